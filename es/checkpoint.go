package es

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/seed8b67a5e0/underflow/fpnet/atomicfile"
	"github.com/seed8b67a5e0/underflow/fpnet/optim"
)

// Checkpoint file format, version 1 (little-endian):
//
//	magic    "UFES-CKPT\n" (10 bytes)
//	version  uint32 = 1
//	hdrLen   uint32, then hdrLen bytes of JSON: checkpointHeader
//	params   dim float32
//	adamM    dim float32
//	adamV    dim float32
//	sha256   32 bytes over everything before it
//
// The JSON header carries the configuration, the generation, Adam's step
// count and free-form metadata (the objective's identity, for example).
const (
	ckptMagic   = "UFES-CKPT\n"
	ckptVersion = 1
)

type checkpointHeader struct {
	Config Config            `json:"config"`
	Gen    int64             `json:"generation"`
	AdamT  int64             `json:"adam_t"`
	Dim    int               `json:"dim"`
	Meta   map[string]string `json:"meta,omitempty"`
}

// Checkpoint is the complete state of a run between generations.
type Checkpoint struct {
	Config Config
	Gen    int64
	Params []float32
	Adam   *optim.Adam
	Meta   map[string]string
}

// Checkpoint captures the trainer's state (sharing its slices: save it
// before the next Step).
func (t *Trainer) Checkpoint(meta map[string]string) *Checkpoint {
	return &Checkpoint{Config: t.Cfg, Gen: t.Gen, Params: t.Params, Adam: t.Opt, Meta: meta}
}

// Save writes the checkpoint to path atomically: a temporary file in the
// same directory, synced, then renamed over path, so a crash at any moment
// leaves either the old file or the new one.
func (c *Checkpoint) Save(path string) error {
	data, err := c.MarshalBinary()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data)
}

// MarshalBinary encodes the checkpoint in the file format above, for a file
// or for a copy kept elsewhere (an object store).
func (c *Checkpoint) MarshalBinary() ([]byte, error) {
	dim := len(c.Params)
	if len(c.Adam.M) != dim || len(c.Adam.V) != dim {
		return nil, fmt.Errorf("es: checkpoint state sizes differ (%d params, %d/%d Adam)", dim, len(c.Adam.M), len(c.Adam.V))
	}
	hdr, err := json.Marshal(checkpointHeader{Config: c.Config, Gen: c.Gen, AdamT: c.Adam.T, Dim: dim, Meta: c.Meta})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(len(ckptMagic) + 8 + len(hdr) + 12*dim + sha256.Size)
	buf.WriteString(ckptMagic)
	binary.Write(&buf, binary.LittleEndian, uint32(ckptVersion))
	binary.Write(&buf, binary.LittleEndian, uint32(len(hdr)))
	buf.Write(hdr)
	for _, v := range [][]float32{c.Params, c.Adam.M, c.Adam.V} {
		writeFloats(&buf, v)
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	return buf.Bytes(), nil
}

func writeFloats(buf *bytes.Buffer, v []float32) {
	var b [4]byte
	for _, x := range v {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(x))
		buf.Write(b[:])
	}
}

// LoadCheckpoint reads and verifies a checkpoint. A truncated, altered or
// foreign file is refused with an error that says what is wrong.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseCheckpoint(data, path)
}

// ParseCheckpoint decodes and verifies a checkpoint held in memory; name
// says where it came from in errors.
func ParseCheckpoint(data []byte, name string) (*Checkpoint, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("es: checkpoint %s: %s", name, fmt.Sprintf(format, args...))
	}
	if len(data) < len(ckptMagic)+8+sha256.Size || string(data[:len(ckptMagic)]) != ckptMagic {
		return nil, bad("not an ES checkpoint (bad magic or too short)")
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, bad("checksum mismatch: the file is truncated or damaged")
	}
	p := body[len(ckptMagic):]
	if v := binary.LittleEndian.Uint32(p); v != ckptVersion {
		return nil, bad("format version %d, this program reads version %d", v, ckptVersion)
	}
	hdrLen := int(binary.LittleEndian.Uint32(p[4:]))
	p = p[8:]
	if hdrLen > len(p) {
		return nil, bad("header length %d exceeds the file", hdrLen)
	}
	var h checkpointHeader
	if err := json.Unmarshal(p[:hdrLen], &h); err != nil {
		return nil, bad("header: %v", err)
	}
	p = p[hdrLen:]
	// Dim is compared by division: 12*Dim of a forged header can wrap
	// around to the payload's length and size a huge allocation.
	if h.Dim <= 0 || len(p)%12 != 0 || h.Dim != len(p)/12 {
		return nil, bad("%d payload bytes for %d parameters (want 12 bytes a parameter)", len(p), h.Dim)
	}
	read := func() []float32 {
		v := make([]float32, h.Dim)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
		}
		p = p[4*h.Dim:]
		return v
	}
	c := &Checkpoint{Config: h.Config, Gen: h.Gen, Meta: h.Meta, Params: read()}
	c.Adam = &optim.Adam{LR: h.Config.LR, Beta1: h.Config.Beta1, Beta2: h.Config.Beta2, Eps: h.Config.Eps, T: h.AdamT}
	c.Adam.M, c.Adam.V = read(), read()
	for i, v := range c.Params {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, bad("parameter %d is %v", i, v)
		}
	}
	if h.Gen < 0 || h.AdamT != h.Gen {
		return nil, bad("generation %d and Adam step %d disagree", h.Gen, h.AdamT)
	}
	return c, nil
}

// ErrMismatch reports a checkpoint that belongs to a different run.
var ErrMismatch = errors.New("es: checkpoint belongs to a different configuration")

// Restore puts the checkpoint's state into the trainer. The configuration
// (all but Workers) and the metadata must equal the trainer's, because a
// resumed run must continue the same trajectory.
func (t *Trainer) Restore(c *Checkpoint, meta map[string]string) error {
	want, got := t.Cfg, c.Config
	want.Workers, got.Workers = 0, 0
	if want != got {
		return fmt.Errorf("%w: checkpoint has %+v, this run %+v", ErrMismatch, got, want)
	}
	if len(c.Params) != len(t.Params) {
		return fmt.Errorf("%w: %d parameters, this run has %d", ErrMismatch, len(c.Params), len(t.Params))
	}
	for k, v := range meta {
		if c.Meta[k] != v {
			return fmt.Errorf("%w: %s is %q in the checkpoint, %q in this run", ErrMismatch, k, c.Meta[k], v)
		}
	}
	copy(t.Params, c.Params)
	copy(t.Opt.M, c.Adam.M)
	copy(t.Opt.V, c.Adam.V)
	t.Opt.T = c.Adam.T
	t.Gen = c.Gen
	t.begun = -1 // the generation's data and offsets belong to the old state
	return nil
}
