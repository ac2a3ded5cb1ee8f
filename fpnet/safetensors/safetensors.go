// Package safetensors saves and loads fpnet's parameters and training
// checkpoints as safetensors files, checked whole on load.
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

// Parameters are saved as safetensors (https://huggingface.co/docs/safetensors),
// which PyTorch, JAX and numpy users can open: an 8-byte little-endian
// header length, a JSON header, then the tensors' bytes. Here the tensors
// are W1, b1, W2, b2, ... as F32 little-endian in that order (W_l shaped
// [fan_in, fan_out]), and __metadata__ carries:
//
//	format         "underflow-fpnet"
//	format_version "1"
//	arch           "784-512-512-10"
//	recipe         the recipe name
//	params_sha256  sha256 of the parameter bytes (all tensors, in order)
//
// plus whatever the caller adds. LoadParams refuses a file whose bytes do
// not match the checksum, whose shapes do not match arch, or whose values
// are not finite.
const (
	formatName    = "underflow-fpnet"
	formatVersion = "1"
	// maxHeader bounds the JSON header a loader accepts (a real one is < 1 KiB).
	maxHeader = 1 << 20
)

type tensorInfo struct {
	Dtype       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// SaveParams writes params for arch a as a safetensors file, atomically
// (temporary file, fsync, rename). meta adds entries to __metadata__; the
// reserved keys (format, format_version, arch, recipe, params_sha256) are
// set by SaveParams.
func SaveParams(path string, a fpnet.Arch, recipe string, params []float32, meta map[string]string) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if len(params) != a.NumParams() {
		return fmt.Errorf("save %s: %d parameters, architecture %s has %d", path, len(params), a, a.NumParams())
	}
	if err := fpnet.CheckFinite(a, params); err != nil {
		return fmt.Errorf("save %s: refusing to save non-finite parameters: %v", path, err)
	}
	md := map[string]string{}
	for k, v := range meta {
		md[k] = v
	}
	md["format"] = formatName
	md["format_version"] = formatVersion
	md["arch"] = a.String()
	md["recipe"] = recipe
	md["params_sha256"] = fpnet.ParamsSHA256(params)
	header := map[string]any{"__metadata__": md}
	var off int64
	names := a.TensorNames()
	for l, ly := range a.LayerViews() {
		wBytes := int64(4 * ly.FanIn * ly.FanOut)
		header[names[2*l]] = tensorInfo{Dtype: "F32", Shape: []int{ly.FanIn, ly.FanOut}, DataOffsets: [2]int64{off, off + wBytes}}
		off += wBytes
		bBytes := int64(4 * ly.FanOut)
		header[names[2*l+1]] = tensorInfo{Dtype: "F32", Shape: []int{ly.FanOut}, DataOffsets: [2]int64{off, off + bBytes}}
		off += bBytes
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(hj)%8 != 0 { // the format allows space padding; keeps the data 8-aligned
		hj = append(hj, ' ')
	}
	buf := make([]byte, 8, 8+len(hj)+4*len(params))
	binary.LittleEndian.PutUint64(buf, uint64(len(hj)))
	buf = append(buf, hj...)
	buf = append(buf, fpnet.ParamsBytes(params)...)
	return atomicfile.WriteFile(path, buf)
}

// LoadParams reads a file written by SaveParams and checks it whole: the
// header, the format version, every tensor's dtype, shape and place, the
// data length, the checksum, and that every value is finite.
func LoadParams(path string) (fpnet.Arch, []float32, map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return fpnet.Arch{}, nil, nil, err
	}
	return parseParams(data, path)
}

// parseParams is LoadParams on the file's bytes; path names it in errors.
func parseParams(data []byte, path string) (fpnet.Arch, []float32, map[string]string, error) {
	bad := func(format string, args ...any) (fpnet.Arch, []float32, map[string]string, error) {
		return fpnet.Arch{}, nil, nil, fmt.Errorf("model file %s: %s", path, fmt.Sprintf(format, args...))
	}
	raw, md, body, err := splitSafetensors(data, formatName)
	if err != nil {
		return bad("%v", err)
	}
	a, err := fpnet.ParseArch(md["arch"])
	if err != nil {
		return bad("%v", err)
	}
	want := int64(4 * a.NumParams())
	if int64(len(body)) != want {
		return bad("data section is %d bytes, architecture %s needs %d (truncated or altered)", len(body), a, want)
	}
	names := a.TensorNames()
	if len(raw) != len(names)+1 {
		keys := make([]string, 0, len(raw))
		for k := range raw {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return bad("tensors %v, want exactly %v", keys, names)
	}
	var off int64
	for l, ly := range a.LayerViews() {
		for t, shape := range [][]int{{ly.FanIn, ly.FanOut}, {ly.FanOut}} {
			name := names[2*l+t]
			m, ok := raw[name]
			if !ok {
				return bad("tensor %s missing", name)
			}
			var ti tensorInfo
			if err := json.Unmarshal(m, &ti); err != nil {
				return bad("tensor %s: %v", name, err)
			}
			size := int64(4)
			for _, d := range shape {
				size *= int64(d)
			}
			if ti.Dtype != "F32" || fmt.Sprint(ti.Shape) != fmt.Sprint(shape) || ti.DataOffsets != [2]int64{off, off + size} {
				return bad("tensor %s is %s %v at %v, want F32 %v at [%d %d]", name, ti.Dtype, ti.Shape, ti.DataOffsets, shape, off, off+size)
			}
			off += size
		}
	}
	sum := sha256.Sum256(body)
	if got := hex.EncodeToString(sum[:]); got != md["params_sha256"] {
		return bad("checksum mismatch: parameters hash to %s, header says %q (file altered or damaged)", got, md["params_sha256"])
	}
	params := make([]float32, a.NumParams())
	for i := range params {
		params[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
	}
	if err := fpnet.CheckFinite(a, params); err != nil {
		return bad("%v", err)
	}
	return a, params, md, nil
}

// splitSafetensors parses a safetensors file's header, checks that its
// __metadata__ names the format and version this package writes, and
// returns the header entries, the metadata and the data section.
func splitSafetensors(data []byte, format string) (raw map[string]json.RawMessage, md map[string]string, body []byte, err error) {
	if len(data) < 8 {
		return nil, nil, nil, fmt.Errorf("%d bytes, too short for a safetensors header (truncated?)", len(data))
	}
	hlen := binary.LittleEndian.Uint64(data)
	if hlen > maxHeader || hlen > uint64(len(data)-8) {
		return nil, nil, nil, fmt.Errorf("header length %d exceeds the file (%d bytes): truncated or not safetensors", hlen, len(data))
	}
	if err := json.Unmarshal(data[8:8+hlen], &raw); err != nil {
		return nil, nil, nil, fmt.Errorf("corrupt JSON header: %v", err)
	}
	if m, ok := raw["__metadata__"]; !ok {
		return nil, nil, nil, fmt.Errorf("no __metadata__ (not written by underflow?)")
	} else if err := json.Unmarshal(m, &md); err != nil {
		return nil, nil, nil, fmt.Errorf("corrupt __metadata__: %v", err)
	}
	if md["format"] != format {
		return nil, nil, nil, fmt.Errorf("format %q, want %q", md["format"], format)
	}
	if md["format_version"] != formatVersion {
		return nil, nil, nil, fmt.Errorf("format version %q, this program reads version %s", md["format_version"], formatVersion)
	}
	return raw, md, data[8+hlen:], nil
}
