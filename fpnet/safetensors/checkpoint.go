package safetensors

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/atomicfile"
)

// Checkpoint is a training state: named float32 vectors (parameters,
// optimizer moments, ...) and string metadata (method, step, seed, ...).
// It is saved as safetensors too, with 1-D F32 tensors in name order and
// __metadata__ format "underflow-checkpoint", and a sha256 over the data
// section, so a damaged checkpoint is refused rather than resumed.
type Checkpoint struct {
	Meta    map[string]string
	Tensors map[string][]float32
}

const checkpointFormat = "underflow-checkpoint"

// SaveCheckpoint writes c to path atomically.
func SaveCheckpoint(path string, c *Checkpoint) error {
	names := make([]string, 0, len(c.Tensors))
	for n := range c.Tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	md := map[string]string{}
	for k, v := range c.Meta {
		md[k] = v
	}
	md["format"] = checkpointFormat
	md["format_version"] = formatVersion
	header := map[string]any{}
	var body []byte
	for _, n := range names {
		if n == "__metadata__" {
			return fmt.Errorf("checkpoint %s: tensor name __metadata__ is reserved", path)
		}
		v := c.Tensors[n]
		off := int64(len(body))
		body = append(body, fpnet.ParamsBytes(v)...)
		header[n] = tensorInfo{Dtype: "F32", Shape: []int{len(v)}, DataOffsets: [2]int64{off, int64(len(body))}}
	}
	sum := sha256.Sum256(body)
	md["data_sha256"] = hex.EncodeToString(sum[:])
	header["__metadata__"] = md
	hj, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	buf := make([]byte, 8, 8+len(hj)+len(body))
	binary.LittleEndian.PutUint64(buf, uint64(len(hj)))
	buf = append(buf, hj...)
	buf = append(buf, body...)
	return atomicfile.WriteFile(path, buf)
}

// LoadCheckpoint reads a checkpoint and checks its layout and checksum.
// Non-finite values are allowed here (an optimizer may hold them); the
// caller checks the parameters with CheckFinite.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCheckpoint(data, path)
}

// parseCheckpoint is LoadCheckpoint on the file's bytes; path names it in
// errors. The header is checked before it sizes anything: a forged one (a
// negative shape, offsets past the data) is an error, never an allocation.
func parseCheckpoint(data []byte, path string) (*Checkpoint, error) {
	bad := func(format string, args ...any) (*Checkpoint, error) {
		return nil, fmt.Errorf("checkpoint %s: %s", path, fmt.Sprintf(format, args...))
	}
	raw, md, body, err := splitSafetensors(data, checkpointFormat)
	if err != nil {
		return bad("%v", err)
	}
	c := &Checkpoint{Meta: md, Tensors: map[string][]float32{}}
	sum := sha256.Sum256(body)
	if got := hex.EncodeToString(sum[:]); got != c.Meta["data_sha256"] {
		return bad("checksum mismatch: data hashes to %s, header says %q (file altered, damaged or truncated)", got, c.Meta["data_sha256"])
	}
	type span struct {
		name     string
		from, to int64
	}
	var spans []span
	for name, m := range raw {
		if name == "__metadata__" {
			continue
		}
		var ti tensorInfo
		if err := json.Unmarshal(m, &ti); err != nil {
			return bad("tensor %s: %v", name, err)
		}
		from, to := ti.DataOffsets[0], ti.DataOffsets[1]
		if ti.Dtype != "F32" || len(ti.Shape) != 1 || from < 0 || to < from || to > int64(len(body)) ||
			(to-from)%4 != 0 || int64(ti.Shape[0]) != (to-from)/4 {
			return bad("tensor %s: bad layout %s %v at %v in %d data bytes", name, ti.Dtype, ti.Shape, ti.DataOffsets, len(body))
		}
		spans = append(spans, span{name, from, to})
	}
	sort.Slice(spans, func(i, j int) bool { // empty tensors first at a shared offset
		return spans[i].from < spans[j].from || spans[i].from == spans[j].from && spans[i].to < spans[j].to
	})
	var off int64
	for _, s := range spans {
		if s.from != off {
			return bad("tensor %s starts at byte %d, want %d (overlap or gap)", s.name, s.from, off)
		}
		v := make([]float32, (s.to-s.from)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[s.from+4*int64(i):]))
		}
		c.Tensors[s.name] = v
		off = s.to
	}
	if off != int64(len(body)) {
		return bad("%d bytes of data after the last tensor", int64(len(body))-off)
	}
	return c, nil
}
