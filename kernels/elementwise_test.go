package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// elementwiseOperands are row values and biases around every threshold the
// elementwise ops have: each exponent field of both signs with the boundary
// significands, values near 2^-1 and 2^-126 (the flushing boundaries of a
// scaling by 2^-125 and of an add), subnormals, both zeros, Inf and NaN,
// and weighted random values.
func elementwiseOperands(r *rand.Rand, randomCount int) []float32 {
	var out []float32
	for e := uint32(0); e < 256; e++ {
		for _, s := range []uint32{0, 1, 2, 0x7fffff, 0x7ffffe, 0x400000, 0x3fffff, 0x000fff} {
			out = append(out, f32(e<<23|s), f32(signMask|e<<23|s))
		}
	}
	for _, base := range []uint32{0x3f000000, 0x3f800000, 0x00800000, 0x00000001, 0x3e800000, 0x40000000, 0x01000000} {
		for d := uint32(0); d < 4; d++ {
			for _, sign := range []uint32{0, signMask} {
				out = append(out, f32(sign|(base+d)), f32(sign|(base-d)))
			}
		}
	}
	for i := 0; i < randomCount; i++ {
		out = append(out, weightedRandom(r))
	}
	return out
}

// elementwiseBiases returns two bias rows of cols values for src: one with
// subnormals and values that cancel src's first row exactly (signed zeros),
// and one without subnormals, which the portable loops use without a copy.
func elementwiseBiases(src, vals []float32, cols int) (withSubnormals, normal []float32) {
	withSubnormals = make([]float32, cols)
	for j := range withSubnormals {
		switch j % 4 {
		case 0:
			withSubnormals[j] = -src[j]
		case 1:
			withSubnormals[j] = vals[(j*37)%len(vals)]
		case 2:
			withSubnormals[j] = f32(uint32(j) | uint32(j%2)<<31) // subnormals, ±0
		default:
			withSubnormals[j] = f32(0x3f000000 | uint32(j%2)<<31) // ±2^-1
		}
	}
	if !anySubnormal(withSubnormals) { // narrow rows
		withSubnormals[cols-1] = f32(3)
	}
	normal = make([]float32, cols)
	for j, b := range withSubnormals {
		if math.Float32bits(b)&expMask == 0 {
			b = f32(math.Float32bits(b)&signMask | minNormalBits + uint32(j%3))
		}
		normal[j] = b
	}
	return withSubnormals, normal
}

// Every backend's BiasAdd and BiasAddScale against the scalar reference,
// Add then Mul, in every environment, on row widths with and without a
// vector tail, in place and not.
func TestBiasAddMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	vals := elementwiseOperands(r, 3000)
	exps := []int{-126, -125, -124, -100, -24, -23, -1, 0, 1, 23, 24, 100, 125, 127}
	if testing.Short() {
		exps = []int{-126, -125, -1, 0, 125, 127}
	}
	for _, cols := range []int{64, 10, 1, 7, 17} {
		rows := len(vals)/cols + 1
		src := make([]float32, rows*cols)
		for i := range src {
			src[i] = vals[i%len(vals)]
		}
		subBias, normalBias := elementwiseBiases(src, vals, cols)
		if anySubnormal(normalBias) || !anySubnormal(subBias) {
			t.Fatal("test bias rows do not cover both paths")
		}
		dst := make([]float32, len(src))
		for _, be := range testBackends() {
			for _, env := range Envs {
				for _, bias := range [][]float32{subBias, normalBias} {
					withBackend(be, func() { BiasAdd(env, dst, src, bias, rows, cols) })
					for i, got := range dst {
						if want := Add(env, src[i], bias[i%cols]); !sameBits(got, want) {
							t.Fatalf("%s %v cols=%d: BiasAdd %#08x + %#08x = %#08x, reference %#08x",
								be.name, env, cols, math.Float32bits(src[i]), math.Float32bits(bias[i%cols]), math.Float32bits(got), math.Float32bits(want))
						}
					}
					for _, e := range exps {
						s := pow2(e)
						withBackend(be, func() { BiasAddScale(env, dst, src, bias, rows, cols, e) })
						for i, got := range dst {
							x, b := src[i], bias[i%cols]
							if want := Mul(env, Add(env, x, b), s); !sameBits(got, want) {
								t.Fatalf("%s %v cols=%d: BiasAddScale (%#08x + %#08x)·2^%d = %#08x, reference %#08x",
									be.name, env, cols, math.Float32bits(x), math.Float32bits(b), e, math.Float32bits(got), math.Float32bits(want))
							}
						}
					}
				}
				// In place, as a forward pass runs it.
				inPlace := append([]float32(nil), src...)
				withBackend(be, func() {
					BiasAddScale(env, inPlace, inPlace, subBias, rows, cols, -125)
					BiasAdd(env, dst, src, subBias, rows, cols)
				})
				Scale(env, dst, dst, -125)
				for i := range dst {
					if !sameBits(inPlace[i], dst[i]) {
						t.Fatalf("%s %v cols=%d: in-place fused element %d = %#08x, two passes %#08x",
							be.name, env, cols, i, math.Float32bits(inPlace[i]), math.Float32bits(dst[i]))
					}
				}
				markServed(be, env)
			}
		}
	}
}

func TestAddScaledMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	vals := elementwiseOperands(r, 3000)
	for _, n := range []int{len(vals), 1, 7, 9, 23} {
		x := vals[:n]
		y := make([]float32, n)
		for i := range y {
			y[i] = vals[(i*131+7)%len(vals)]
		}
		dst := make([]float32, n)
		for _, be := range testBackends() {
			for _, env := range Envs {
				for _, s := range []float32{0.01, -0x1p-100, 0x1p-126, 3, -1, 0, 0x1p+100} {
					withBackend(be, func() { AddScaled(env, dst, x, y, s) })
					for i, got := range dst {
						if want := Add(env, x[i], Mul(env, s, y[i])); !sameBits(got, want) {
							t.Fatalf("%s %v n=%d: %#08x + %#08x·%#08x = %#08x, reference %#08x", be.name, env, n,
								math.Float32bits(x[i]), math.Float32bits(s), math.Float32bits(y[i]), math.Float32bits(got), math.Float32bits(want))
						}
					}
				}
				// In place on x, as ES accumulates.
				acc := append([]float32(nil), x...)
				withBackend(be, func() { AddScaled(env, acc, acc, y, 0.5) })
				for i, got := range acc {
					if want := Add(env, x[i], Mul(env, 0.5, y[i])); !sameBits(got, want) {
						t.Fatalf("%s %v n=%d: in place, element %d = %#08x, reference %#08x", be.name, env, n, i, math.Float32bits(got), math.Float32bits(want))
					}
				}
			}
		}
	}
}

// markServed records that be ran natively in env, for
// UNDERFLOW_REQUIRE_BACKEND.
func markServed(be *backend, env Env) {
	if _, ok := be.mode(env); ok {
		served[be.name] = true
	}
}

func TestScaleMatchesReference(t *testing.T) {
	vals := elementwiseOperands(rand.New(rand.NewPCG(7, 8)), 20000)
	dst := make([]float32, len(vals))
	for _, env := range Envs {
		for _, e := range []int{-126, -125, -124, -100, -24, -23, -2, -1, 0, 1, 2, 23, 24, 100, 124, 125, 126, 127} {
			s := pow2(e)
			Scale(env, dst, vals, e)
			for i, x := range vals {
				if want := Mul(env, x, s); !sameBits(dst[i], want) {
					t.Fatalf("%v: Scale(%#08x, 2^%d) = %#08x, reference %#08x", env, math.Float32bits(x), e, math.Float32bits(dst[i]), math.Float32bits(want))
				}
			}
		}
	}
}

// The case a native IEEE multiply gets wrong under x86 FTZ: an exact
// product just below 2^-126 that rounds up to 2^-126.
func TestScaleJustBelowMin(t *testing.T) {
	x := []float32{f32(0x3f7fffff)} // 1 - 2^-24
	got := make([]float32, 1)
	for _, env := range []Env{FTZ, FTZDAZ, ArmFZ} {
		Scale(env, got, x, -126)
		if math.Float32bits(got[0]) != 0 {
			t.Errorf("%v: (1-2^-24)·2^-126 = %#08x, want +0 (the exact result is tiny)", env, math.Float32bits(got[0]))
		}
		for _, be := range testBackends() {
			withBackend(be, func() { BiasAddScale(env, got, x, []float32{0}, 1, 1, -126) })
			if math.Float32bits(got[0]) != 0 {
				t.Errorf("%s %v: (1-2^-24 + 0)·2^-126 = %#08x, want +0", be.name, env, math.Float32bits(got[0]))
			}
		}
	}
	Scale(IEEE, got, x, -126)
	if math.Float32bits(got[0]) != 0x00800000 {
		t.Errorf("IEEE: (1-2^-24)·2^-126 = %#08x, want 0x00800000 (rounds up)", math.Float32bits(got[0]))
	}
}

func TestTinyProductBelow(t *testing.T) {
	for e := -126; e <= 127; e++ {
		want := math.Ldexp(1, -126-e)
		got := float64(math.Float32frombits(tinyProductBelow(e)))
		if tinyProductBelow(e) == 0 {
			got = 0
			want = math.Max(want, 0)
			if want >= math.Ldexp(1, -149) {
				t.Errorf("e=%d: threshold 0, want 2^%d", e, -126-e)
			}
			continue
		}
		if got != want {
			t.Errorf("e=%d: threshold %g, want %g", e, got, want)
		}
	}
}

func TestElementwisePanicsOnShortSlices(t *testing.T) {
	mustPanic := func(name string, fn func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		fn()
	}
	s := make([]float32, 10)
	mustPanic("short src", func() { BiasAdd(IEEE, s, s[:9], s, 2, 5) })
	mustPanic("short dst", func() { BiasAddScale(IEEE, s[:9], s, s, 2, 5, 1) })
	mustPanic("short bias", func() { BiasAdd(IEEE, s, s, s[:4], 2, 5) })
	mustPanic("negative rows", func() { BiasAdd(IEEE, s, s, s, -1, 5) })
	mustPanic("bad exponent", func() { BiasAddScale(IEEE, s, s, s, 2, 5, 128) })
	mustPanic("bad env", func() { BiasAdd(Env(99), s, s, s, 2, 5) })
	mustPanic("short scale dst", func() { Scale(IEEE, s[:9], s, 1) })
	mustPanic("short x", func() { AddScaled(IEEE, s, s[:9], s, 1) })
	mustPanic("short y", func() { AddScaled(IEEE, s, s, s[:9], 1) })
}

// FuzzElementwise: one row value, one bias, one factor and an exponent,
// in a row of 9 (a vector and a tail), through every backend's BiasAdd,
// BiasAddScale and AddScaled against the scalar reference.
func FuzzElementwise(f *testing.F) {
	f.Add(uint32(0x00400000), uint32(0x80000001), uint32(0x3c23d70a), int8(-125), uint8(3))
	f.Add(uint32(0x3f000000), uint32(0xbf000001), uint32(0x80000000), int8(-126), uint8(1))
	f.Add(uint32(0x7fc00000), uint32(0xff800000), uint32(0x00800000), int8(127), uint8(4))
	f.Fuzz(func(t *testing.T, xb, bb, sb uint32, e int8, envIdx uint8) {
		env := Envs[int(envIdx)%len(Envs)]
		x, b, s := f32(xb), f32(bb), f32(sb)
		exp := max(-126, int(e))
		const n = 9
		src, bias, y := make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range src { // the fuzzed values, and neighbours in the tail
			src[i], bias[i], y[i] = f32(xb+uint32(i)), f32(bb-uint32(i)), f32(sb^uint32(i))
		}
		src[n-1], bias[n-1], y[n-1] = x, b, s
		dst := make([]float32, n)
		for _, be := range testBackends() {
			withBackend(be, func() { BiasAdd(env, dst, src, bias, 1, n) })
			for i := range dst {
				if want := Add(env, src[i], bias[i]); !sameBits(dst[i], want) {
					t.Fatalf("%s %v BiasAdd %#08x + %#08x = %#08x, reference %#08x", be.name, env, math.Float32bits(src[i]), math.Float32bits(bias[i]), math.Float32bits(dst[i]), math.Float32bits(want))
				}
			}
			withBackend(be, func() { BiasAddScale(env, dst, src, bias, 1, n, exp) })
			for i := range dst {
				if want := Mul(env, Add(env, src[i], bias[i]), pow2(exp)); !sameBits(dst[i], want) {
					t.Fatalf("%s %v BiasAddScale (%#08x + %#08x)·2^%d = %#08x, reference %#08x", be.name, env, math.Float32bits(src[i]), math.Float32bits(bias[i]), exp, math.Float32bits(dst[i]), math.Float32bits(want))
				}
			}
			withBackend(be, func() { AddScaled(env, dst, src, y, s) })
			for i := range dst {
				if want := Add(env, src[i], Mul(env, s, y[i])); !sameBits(dst[i], want) {
					t.Fatalf("%s %v AddScaled %#08x + %#08x·%#08x = %#08x, reference %#08x", be.name, env, math.Float32bits(src[i]), math.Float32bits(s), math.Float32bits(y[i]), math.Float32bits(dst[i]), math.Float32bits(want))
				}
			}
			// WeightedSum: src accumulates y·s, then bias·x (two pairs).
			copy(dst, src)
			withBackend(be, func() { WeightedSum(env, dst, [][]float32{y, bias}, []float32{s, x}) })
			for i := range dst {
				if want := Add(env, Add(env, src[i], Mul(env, s, y[i])), Mul(env, x, bias[i])); !sameBits(dst[i], want) {
					t.Fatalf("%s %v WeightedSum element %d = %#08x, reference %#08x", be.name, env, i, math.Float32bits(dst[i]), math.Float32bits(want))
				}
			}
		}
	})
}

// AdamUpdate against the scalar reference ops in IEEE (and the square
// root of package math, correctly rounded), on every backend, with and
// without decay, at lengths that exercise the vector part and the tail.
func TestAdamUpdateMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	vals := elementwiseOperands(r, 3000)
	pick := func(i, k int) float32 { return vals[(i*k+k)%len(vals)] }
	hypers := [][6]float32{{0.9, 0.999, 1 - float32(0.9), 1 - float32(0.999), 1e-8, 1e-3}, {0.5, 0.75, 0.3, 1e-30, 0x1p-140, 7}}
	for _, n := range []int{len(vals), 1, 7, 8, 9, 23} {
		for _, h := range hypers {
			for _, decay := range []float32{0, 0.01, -0x1p-126} {
				b1, b2, c1, c2, eps, step := h[0], h[1], h[2], h[3], h[4], h[5]
				p0, g, m0, v0 := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
				for i := 0; i < n; i++ {
					p0[i], g[i], m0[i], v0[i] = pick(i, 1), pick(i, 7), pick(i, 13), pick(i, 29)
					if i%5 != 0 {
						v0[i] = float32(math.Abs(float64(v0[i]))) // mostly a second moment; some negative, for the NaN path
					}
				}
				for _, be := range testBackends() {
					p, m, v := append([]float32(nil), p0...), append([]float32(nil), m0...), append([]float32(nil), v0...)
					withBackend(be, func() { AdamUpdate(p, g, m, v, b1, b2, c1, c2, eps, decay, step) })
					for i := 0; i < n; i++ {
						mi := Add(IEEE, Mul(IEEE, b1, m0[i]), Mul(IEEE, c1, g[i]))
						vi := Add(IEEE, Mul(IEEE, b2, v0[i]), Mul(IEEE, c2, Mul(IEEE, g[i], g[i])))
						pi := p0[i]
						if decay != 0 {
							pi = Sub(IEEE, pi, Mul(IEEE, decay, pi))
						}
						denom := Add(IEEE, float32(math.Sqrt(float64(vi))), eps)
						pi = Sub(IEEE, pi, Div(IEEE, Mul(IEEE, step, mi), denom))
						if !SameResult(m[i], mi) || !SameResult(v[i], vi) || !SameResult(p[i], pi) {
							t.Fatalf("%s n=%d decay=%v element %d (p %#08x g %#08x m %#08x v %#08x): got p,m,v = %#08x %#08x %#08x, reference %#08x %#08x %#08x",
								be.name, n, decay, i, math.Float32bits(p0[i]), math.Float32bits(g[i]), math.Float32bits(m0[i]), math.Float32bits(v0[i]),
								math.Float32bits(p[i]), math.Float32bits(m[i]), math.Float32bits(v[i]), math.Float32bits(pi), math.Float32bits(mi), math.Float32bits(vi))
						}
					}
				}
			}
		}
	}
}
