package fpnet

import (
	"math"
	"testing"

	"github.com/seed8b67a5e0/underflow/kernels"
)

// boundaryFloats builds TestFloat-style operands: every exponent field
// (both signs) OR-ed with the significand patterns that sit on rounding and
// flushing boundaries, plus weighted random values.
func boundaryFloats(randomCount int) []float32 {
	sigs := []uint32{0, 1, 2, 0x7FFFFF, 0x7FFFFE, 0x400000, 0x3FFFFF, 0x000FFF}
	var out []float32
	for exp := uint32(0); exp < 256; exp++ {
		for _, s := range sigs {
			for _, sign := range []uint32{0, signMask} {
				out = append(out, math.Float32frombits(sign|exp<<23|s))
			}
		}
	}
	rng := SplitMix64{State: 7}
	for i := 0; i < randomCount; i++ {
		b := uint32(rng.Uint64())
		if i%2 == 0 { // weight towards the subnormal band and its neighbours
			b = b&(signMask|0x7FFFFF) | uint32(rng.Intn(6))<<23
		}
		out = append(out, math.Float32frombits(b))
	}
	return out
}

func sameFloat(a, b float32) bool {
	if a != a && b != b {
		return true // NaNs compare by class
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

func TestAddEnvMatchesReference(t *testing.T) {
	// Operands near the subnormal band, where adds can land tiny.
	var small []float32
	for _, v := range boundaryFloats(2000) {
		e := math.Float32bits(v) >> 23 & 0xff
		if e < 30 || e == 255 || e > 250 {
			small = append(small, v)
		}
	}
	for _, env := range kernels.Envs {
		n := 0
		for _, a := range small {
			for _, b := range small {
				want := kernels.Add(env, a, b)
				if got := AddEnv(env, a, b); !sameFloat(got, want) {
					t.Fatalf("%v: AddEnv(%#08x, %#08x) = %#08x, reference %#08x", env, math.Float32bits(a), math.Float32bits(b), math.Float32bits(got), math.Float32bits(want))
				}
				n++
			}
		}
		// The vector form, rows of boundary values plus a bias row.
		vals := boundaryFloats(500)
		cols := 64
		rows := len(vals) / cols
		src := vals[:rows*cols]
		bias := small[:cols]
		dst := make([]float32, len(src))
		addBiasRows(env, dst, src, bias, rows, cols)
		for i, got := range dst {
			if want := kernels.Add(env, src[i], bias[i%cols]); !sameFloat(got, want) {
				t.Fatalf("%v: addBiasRows element %d: %#08x + %#08x = %#08x, reference %#08x", env, i, math.Float32bits(src[i]), math.Float32bits(bias[i%cols]), math.Float32bits(got), math.Float32bits(want))
			}
		}
		t.Logf("%v: %d scalar pairs and %d row elements agree with kernels.Add", env, n, len(dst))
	}
}

func TestScaleEnvMatchesReference(t *testing.T) {
	vals := boundaryFloats(20000)
	exps := []int{-126, -125, -124, -100, -24, -23, -2, -1, 0, 1, 2, 23, 24, 100, 124, 125, 126, 127}
	for _, env := range kernels.Envs {
		for _, e := range exps {
			s, _ := pow2(e)
			dst := make([]float32, len(vals))
			scaleInto(env, dst, vals, e)
			for i, x := range vals {
				want := kernels.Mul(env, x, s)
				if got := ScaleEnv(env, x, e); !sameFloat(got, want) {
					t.Fatalf("%v: ScaleEnv(%#08x, 2^%d) = %#08x, reference %#08x", env, math.Float32bits(x), e, math.Float32bits(got), math.Float32bits(want))
				}
				if !sameFloat(dst[i], want) {
					t.Fatalf("%v: scaleInto(%#08x, 2^%d) = %#08x, reference %#08x", env, math.Float32bits(x), e, math.Float32bits(dst[i]), math.Float32bits(want))
				}
			}
		}
	}
}

// The case a native multiply gets wrong under x86 FTZ: an exact product
// just below 2^-126 that rounds up to 2^-126.
func TestScaleJustBelowMin(t *testing.T) {
	x := math.Float32frombits(0x3f7fffff) // 1 - 2^-24
	for _, env := range []kernels.Env{kernels.FTZ, kernels.FTZDAZ, kernels.ArmFZ} {
		got := ScaleEnv(env, x, -126)
		if math.Float32bits(got) != 0 {
			t.Errorf("%v: (1-2^-24)·2^-126 = %#08x, want +0 (exact result is tiny)", env, math.Float32bits(got))
		}
	}
	if got := ScaleEnv(kernels.IEEE, x, -126); math.Float32bits(got) != 0x00800000 {
		t.Errorf("IEEE: (1-2^-24)·2^-126 = %#08x, want 0x00800000 (rounds up)", math.Float32bits(got))
	}
}
