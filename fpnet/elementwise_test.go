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

// The fused add-then-scale pass against its two-step reference,
// kernels.Mul(env, kernels.Add(env, x, b), 2^e), in every environment, on
// sums around the thresholds: values near 2^-126·2^125 = 2^-1 (the
// flushing boundary of the scaling by 2^-125), near 2^-126, subnormals and
// both signed zeros, against bias rows that cancel them or push them across.
func TestAddBiasScaleRowsMatchesTwoStepReference(t *testing.T) {
	vals := boundaryFloats(3000)
	for _, base := range []uint32{0x3f000000, 0x3f800000, 0x00800000, 0x00000001, 0x3e800000, 0x40000000, 0x01000000} {
		for d := uint32(0); d < 4; d++ {
			for _, sign := range []uint32{0, signMask} {
				vals = append(vals, math.Float32frombits(sign|(base+d)), math.Float32frombits(sign|(base-d)))
			}
		}
	}
	vals = append(vals, 0, float32(math.Copysign(0, -1)))
	cols := 64
	rows := len(vals)/cols + 1
	src := make([]float32, rows*cols)
	copy(src, vals)
	for i := len(vals); i < len(src); i++ {
		src[i] = vals[i%len(vals)]
	}
	// Bias values from the same boundary set, among them the negatives
	// of the row values so that exact cancellations (signed zeros) occur.
	bias := make([]float32, cols)
	for j := range bias {
		switch j % 4 {
		case 0:
			bias[j] = -src[j]
		case 1:
			bias[j] = vals[(j*37)%len(vals)]
		case 2:
			bias[j] = math.Float32frombits(uint32(j) | uint32(j%2)<<31) // subnormals, ±0
		default:
			bias[j] = math.Float32frombits(0x3f000000 | uint32(j%2)<<31) // ±2^-1
		}
	}
	// A second bias row without subnormals takes the path that skips the
	// bias's DAZ.
	normalBias := make([]float32, cols)
	for j, b := range bias {
		if math.Float32bits(b)&expMask == 0 {
			b = math.Float32frombits(math.Float32bits(b)&signMask | minNormalBits + uint32(j%3))
		}
		normalBias[j] = b
	}
	if anySubnormal(normalBias) || !anySubnormal(bias) {
		t.Fatal("test bias rows do not cover both paths")
	}
	dst := make([]float32, len(src))
	for _, env := range kernels.Envs {
		for _, bias := range [][]float32{bias, normalBias} {
			for _, e := range []int{-126, -125, -124, -100, -24, -23, -1, 0, 1, 23, 24, 100, 125, 127} {
				s, _ := pow2(e)
				addBiasScaleRows(env, dst, src, bias, rows, cols, e)
				for i, got := range dst {
					x, b := src[i], bias[i%cols]
					want := kernels.Mul(env, kernels.Add(env, x, b), s)
					if !sameFloat(got, want) {
						t.Fatalf("%v: addBiasScaleRows (%#08x + %#08x)·2^%d = %#08x, reference %#08x", env, math.Float32bits(x), math.Float32bits(b), e, math.Float32bits(got), math.Float32bits(want))
					}
				}
			}
			addBiasRows(env, dst, src, bias, rows, cols)
			for i, got := range dst {
				if want := kernels.Add(env, src[i], bias[i%cols]); !sameFloat(got, want) {
					t.Fatalf("%v: addBiasRows %#08x + %#08x = %#08x, reference %#08x", env, math.Float32bits(src[i]), math.Float32bits(bias[i%cols]), math.Float32bits(got), math.Float32bits(want))
				}
			}
		}
		// In place, as scaleInPlace after addBiasRows would see it.
		inPlace := append([]float32(nil), src...)
		addBiasScaleRows(env, inPlace, inPlace, bias, rows, cols, -125)
		addBiasRows(env, dst, src, bias, rows, cols)
		scaleInPlace(env, dst, -125)
		for i := range dst {
			if !sameFloat(inPlace[i], dst[i]) {
				t.Fatalf("%v: in-place fused element %d = %#08x, two passes %#08x", env, i, math.Float32bits(inPlace[i]), math.Float32bits(dst[i]))
			}
		}
	}
}

func TestTinyProductBelow(t *testing.T) {
	for e := -126; e <= 127; e++ {
		_, tinyBelow := pow2(e)
		got := tinyProductBelow(e)
		if tinyBelow < math.SmallestNonzeroFloat32 {
			if got != 0 {
				t.Errorf("2^%d: threshold bits %#08x, want 0 (no float32 is tiny)", e, got)
			}
			continue
		}
		if want := math.Float32bits(float32(tinyBelow)); got != want {
			t.Errorf("2^%d: threshold bits %#08x, want %#08x", e, got, want)
		}
	}
}
