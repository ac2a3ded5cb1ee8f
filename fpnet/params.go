package fpnet

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
)

// ParamsBytes returns the parameters as little-endian float32 bytes.
func ParamsBytes(params []float32) []byte {
	b := make([]byte, 4*len(params))
	for i, v := range params {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// ParamsSHA256 is the hex sha256 of the parameters' little-endian bytes:
// the identity of a trained network, equal on every platform when the bits
// are.
func ParamsSHA256(params []float32) string {
	s := sha256.Sum256(ParamsBytes(params))
	return hex.EncodeToString(s[:])
}

// CheckFinite returns an error naming the first NaN or infinite parameter.
func CheckFinite(a Arch, params []float32) error {
	for i, v := range params {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("parameter %d (%s) is %v", i, a.ParamName(i), v)
		}
	}
	return nil
}

// TensorNames returns the names of the tensors: W1, b1, W2, b2, ...
func (a Arch) TensorNames() []string {
	var names []string
	for l := 1; l <= a.Layers(); l++ {
		names = append(names, "W"+strconv.Itoa(l), "b"+strconv.Itoa(l))
	}
	return names
}

// ParamName says where flat index i lies, as "W2[3,17]" or "b1[5]".
func (a Arch) ParamName(i int) string {
	for l, ly := range a.LayerViews() {
		if i >= ly.WOff && i < ly.BOff {
			j := i - ly.WOff
			return fmt.Sprintf("W%d[%d,%d]", l+1, j/ly.FanOut, j%ly.FanOut)
		}
		if i >= ly.BOff && i < ly.BOff+ly.FanOut {
			return fmt.Sprintf("b%d[%d]", l+1, i-ly.BOff)
		}
	}
	return fmt.Sprintf("index %d", i)
}
