package safetensors

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
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

// forgedCheckpoint builds a checkpoint file from a header's tensor entries
// and a data section, with a correct data_sha256: only the header lies.
func forgedCheckpoint(tensors map[string]any, body []byte) []byte {
	sum := sha256.Sum256(body)
	header := map[string]any{"__metadata__": map[string]string{"format": checkpointFormat, "format_version": formatVersion,
		"data_sha256": hex.EncodeToString(sum[:])}}
	for k, v := range tensors {
		header[k] = v
	}
	hj, _ := json.Marshal(header)
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hj)))
	return append(append(out, hj...), body...)
}

// A checkpoint whose checksum is right but whose header is hostile (a
// negative shape, offsets backwards or past the data, a dimension whose
// byte count overflows) is refused with an error, never a panic or a huge
// allocation.
func TestHostileCheckpointHeaders(t *testing.T) {
	body := make([]byte, 16)
	for name, ti := range map[string]any{
		"negative shape":    map[string]any{"dtype": "F32", "shape": []int{-1}, "data_offsets": []int64{0, -4}},
		"backwards offsets": map[string]any{"dtype": "F32", "shape": []int{-2}, "data_offsets": []int64{16, 8}},
		"past the data":     map[string]any{"dtype": "F32", "shape": []int{8}, "data_offsets": []int64{0, 32}},
		"huge dimension":    map[string]any{"dtype": "F32", "shape": []int64{1 << 62}, "data_offsets": []int64{0, 0}},
		"odd byte count":    map[string]any{"dtype": "F32", "shape": []int{0}, "data_offsets": []int64{0, 3}},
		"two dimensions":    map[string]any{"dtype": "F32", "shape": []int{2, 2}, "data_offsets": []int64{0, 16}},
	} {
		data := forgedCheckpoint(map[string]any{"x": ti}, body)
		c, err := parseCheckpoint(data, "forged.safetensors")
		if err == nil || !strings.Contains(err.Error(), "forged.safetensors") || !strings.Contains(err.Error(), "tensor x") {
			t.Errorf("%s: checkpoint %v, error %v; want an error naming the file and the tensor", name, c, err)
		}
	}
	// The well-formed twin loads.
	data := forgedCheckpoint(map[string]any{"x": map[string]any{"dtype": "F32", "shape": []int{4}, "data_offsets": []int64{0, 16}}}, body)
	if c, err := parseCheckpoint(data, "ok"); err != nil || len(c.Tensors["x"]) != 4 {
		t.Errorf("well-formed checkpoint: %v, %v", c, err)
	}
}

// A model whose header claims a huge architecture is refused by the data
// length before anything is sized by it.
func TestHostileModelHeader(t *testing.T) {
	hj, _ := json.Marshal(map[string]any{"__metadata__": map[string]string{"format": formatName, "format_version": formatVersion,
		"arch": "65536-65536-65536-65536", "params_sha256": strings.Repeat("0", 64)}})
	data := append(binary.LittleEndian.AppendUint64(nil, uint64(len(hj))), hj...)
	if _, _, _, err := parseParams(data, "huge.safetensors"); err == nil || !strings.Contains(err.Error(), "needs") {
		t.Errorf("huge architecture: %v; want a refusal by data length", err)
	}
}

// The loaders take arbitrary bytes: an error or a checked result, never a
// panic. `make test` runs these for a few seconds each
// (go test -fuzz FuzzParseCheckpoint / FuzzParseParams).
func FuzzParseCheckpoint(f *testing.F) {
	var ck bytes.Buffer
	dir := f.TempDir()
	path := filepath.Join(dir, "c.safetensors")
	if err := SaveCheckpoint(path, &Checkpoint{Meta: map[string]string{"step": "3"},
		Tensors: map[string][]float32{"params": {1, 2, 3}, "adam_m": {0, 0, 0}, "empty": {}}}); err != nil {
		f.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	ck.Write(b)
	f.Add(ck.Bytes())
	f.Add(forgedCheckpoint(map[string]any{"x": map[string]any{"dtype": "F32", "shape": []int{-1}, "data_offsets": []int64{0, -4}}}, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range [][]byte{data, reseal(data, "data_sha256")} {
			c, err := parseCheckpoint(d, "fuzz")
			if err != nil {
				continue
			}
			total := 0
			for _, v := range c.Tensors {
				total += 4 * len(v)
			}
			if total > len(d) {
				t.Fatalf("%d bytes of tensors from a %d-byte file", total, len(d))
			}
		}
	})
}

// reseal returns data with the checksum in its __metadata__ (key) made right
// for its data section, where its header parses, so that fuzzing reaches
// the checks behind the checksum; otherwise data unchanged.
func reseal(data []byte, key string) []byte {
	if len(data) < 8 {
		return data
	}
	hlen := binary.LittleEndian.Uint64(data)
	if hlen > uint64(len(data)-8) {
		return data
	}
	var raw map[string]json.RawMessage
	var md map[string]string
	if json.Unmarshal(data[8:8+hlen], &raw) != nil || json.Unmarshal(raw["__metadata__"], &md) != nil || md == nil {
		return data
	}
	body := data[8+hlen:]
	sum := sha256.Sum256(body)
	md[key] = hex.EncodeToString(sum[:])
	raw["__metadata__"], _ = json.Marshal(md)
	hj, _ := json.Marshal(raw)
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hj)))
	return append(append(out, hj...), body...)
}

func FuzzParseParams(f *testing.F) {
	arch := fpnet.Arch{Sizes: []int{3, 2, 2}}
	path := filepath.Join(f.TempDir(), "m.safetensors")
	if err := SaveParams(path, arch, "openai2017", fpnet.InitParams(arch, 1), nil); err != nil {
		f.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range [][]byte{data, reseal(data, "params_sha256")} {
			a, p, _, err := parseParams(d, "fuzz")
			if err != nil {
				continue
			}
			if len(p) != a.NumParams() || fpnet.CheckFinite(a, p) != nil {
				t.Fatalf("accepted %d parameters for %s, or non-finite ones", len(p), a)
			}
		}
	})
}
