package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seed8b67a5e0/underflow/fpnet"
)

func TestSaveLoadParams(t *testing.T) {
	arch := fpnet.Arch{Sizes: []int{6, 5, 3}}
	params := fpnet.InitParams(arch, 2)
	params[arch.LayerViews()[1].BOff] = float32(math.Copysign(0, -1))
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := SaveParams(path, arch, "openai2017", params, map[string]string{"note": "x"}); err != nil {
		t.Fatal(err)
	}
	a, got, md, err := LoadParams(path)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Equal(arch) || md["recipe"] != "openai2017" || md["note"] != "x" || md["params_sha256"] != fpnet.ParamsSHA256(params) {
		t.Errorf("loaded arch %v, metadata %v", a, md)
	}
	for i := range params {
		if math.Float32bits(got[i]) != math.Float32bits(params[i]) {
			t.Fatalf("parameter %d: %v, saved %v", i, got[i], params[i])
		}
	}
	orig, _ := os.ReadFile(path)
	hlen := int(binary.LittleEndian.Uint64(orig))
	check := func(name string, data []byte, want string) {
		t.Helper()
		p := filepath.Join(t.TempDir(), "bad.safetensors")
		os.WriteFile(p, data, 0o644)
		if _, _, _, err := LoadParams(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one mentioning %q", name, err, want)
		}
	}
	check("truncated", orig[:len(orig)-3], "truncated")
	check("truncated header", orig[:20], "truncated")
	check("empty", nil, "too short")
	flipped := bytes.Clone(orig)
	flipped[len(flipped)-5] ^= 1
	check("altered byte", flipped, "checksum mismatch")
	badJSON := bytes.Clone(orig)
	badJSON[9] = '!'
	check("corrupt header", badJSON, "JSON")
	badVersion := bytes.Replace(bytes.Clone(orig), []byte(`"format_version":"1"`), []byte(`"format_version":"9"`), 1)
	check("future version", badVersion, "version")
	// NaN with a matching checksum: refused at load, and at save.
	nan := append([]float32(nil), params...)
	nan[7] = float32(math.NaN())
	if err := SaveParams(path, arch, "openai2017", nan, nil); err == nil || !strings.Contains(err.Error(), "W1[1,2]") {
		t.Errorf("saving NaN: error %v", err)
	}
	body := fpnet.ParamsBytes(nan)
	hdr := bytes.Replace(orig[8:8+hlen], []byte(fpnet.ParamsSHA256(params)), []byte(fpnet.ParamsSHA256(nan)), 1)
	withNaN := append(append(bytes.Clone(orig[:8]), hdr...), body...)
	check("NaN parameter", withNaN, "NaN")
}

func TestCheckpointRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.safetensors")
	c := &Checkpoint{Meta: map[string]string{"step": "12"}, Tensors: map[string][]float32{"params": {1, 2, 3}, "adam_m": {4}, "empty": {}}}
	if err := SaveCheckpoint(path, c); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Meta["step"] != "12" || len(got.Tensors["params"]) != 3 || got.Tensors["params"][2] != 3 || got.Tensors["adam_m"][0] != 4 || len(got.Tensors) != 3 {
		t.Errorf("round trip: %+v", got)
	}
	orig, _ := os.ReadFile(path)
	for name, data := range map[string][]byte{"truncated": orig[:len(orig)-1], "flipped": append(bytes.Clone(orig[:len(orig)-1]), orig[len(orig)-1]^0x40), "short": orig[:5]} {
		os.WriteFile(path, data, 0o644)
		if _, err := LoadCheckpoint(path); err == nil {
			t.Errorf("%s checkpoint accepted", name)
		}
	}
}
