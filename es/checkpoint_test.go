package es

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// forgedESCheckpoint builds a checkpoint from a raw header and payload with
// a correct checksum: only the header lies.
func forgedESCheckpoint(hdr any, payload []byte) []byte {
	hj, _ := json.Marshal(hdr)
	var buf bytes.Buffer
	buf.WriteString(ckptMagic)
	binary.Write(&buf, binary.LittleEndian, uint32(ckptVersion))
	binary.Write(&buf, binary.LittleEndian, uint32(len(hj)))
	buf.Write(hj)
	buf.Write(payload)
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	return buf.Bytes()
}

// A checkpoint with a valid checksum and a hostile header is an error that
// says what is wrong, never a panic: a dimension whose 12·dim wraps around
// to the payload's length (2^62+1 parameters in 12 bytes), a negative one,
// a header length past the file.
func TestCheckpointHostileHeader(t *testing.T) {
	payload := make([]byte, 12)
	for name, dim := range map[string]int64{"wrapping dimension": 1<<62 + 1, "negative dimension": -1, "wrong dimension": 2} {
		data := forgedESCheckpoint(map[string]any{"config": DefaultConfig(), "generation": 0, "adam_t": 0, "dim": dim}, payload)
		if _, err := ParseCheckpoint(data, "forged.bin"); err == nil || !strings.Contains(err.Error(), "forged.bin") {
			t.Errorf("%s: error %v; want a refusal naming the file", name, err)
		}
	}
	long := forgedESCheckpoint(map[string]any{"dim": 1}, payload)
	binary.LittleEndian.PutUint32(long[len(ckptMagic)+4:], math.MaxUint32)
	sum := sha256.Sum256(long[:len(long)-sha256.Size])
	copy(long[len(long)-sha256.Size:], sum[:])
	if _, err := ParseCheckpoint(long, "long.bin"); err == nil || !strings.Contains(err.Error(), "header length") {
		t.Errorf("header length past the file: %v", err)
	}
	ok := forgedESCheckpoint(map[string]any{"config": DefaultConfig(), "generation": 0, "adam_t": 0, "dim": 1}, payload)
	if c, err := ParseCheckpoint(ok, "ok"); err != nil || len(c.Params) != 1 {
		t.Errorf("well-formed twin: %v", err)
	}
}

// ParseCheckpoint takes arbitrary bytes: an error or a checked result,
// never a panic. `make test` runs it for a few seconds (go test -fuzz).
func FuzzParseCheckpoint(f *testing.F) {
	tr := newToyTrainer(f, toyConfig(1), 10)
	tr.Step()
	good, err := tr.Checkpoint(map[string]string{"k": "v"}).MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-sha256.Size])
	f.Add(forgedESCheckpoint(map[string]any{"dim": 1<<62 + 1}, make([]byte, 12)))
	f.Add([]byte(ckptMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		parseChecked(t, data)
		// The same bytes sealed with a right checksum, so that the header
		// and payload checks behind it are reached too.
		sum := sha256.Sum256(data)
		parseChecked(t, append(bytes.Clone(data), sum[:]...))
	})
}

func parseChecked(t *testing.T, data []byte) {
	c, err := ParseCheckpoint(data, "fuzz")
	if err != nil {
		return
	}
	if n := len(c.Params); n == 0 || 12*n > len(data) || len(c.Adam.M) != n || len(c.Adam.V) != n {
		t.Fatalf("accepted %d parameters (Adam %d, %d) from %d bytes", n, len(c.Adam.M), len(c.Adam.V), len(data))
	}
	if _, err := c.MarshalBinary(); err != nil {
		t.Fatalf("an accepted checkpoint does not encode again: %v", err)
	}
}
