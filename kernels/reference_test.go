package kernels

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

func f32(bits uint32) float32 { return math.Float32frombits(bits) }

// sameBits compares two results as the contract does: bits, signed zeros
// included, and NaNs by class.
func sameBits(x, y float32) bool {
	if x != x && y != y {
		return true
	}
	return math.Float32bits(x) == math.Float32bits(y)
}

// TestContractExamples checks each worked example of float-semantics.md.
func TestContractExamples(t *testing.T) {
	min := f32(0x00800000)
	cases := []struct {
		name string
		got  float32
		want uint32
	}{
		// The tie: exact 2^-126 - 2^-150. IEEE rounds up to min; x86 FTZ
		// flushes, since it rounds to 24 bits with unbounded exponent first.
		{"tie IEEE", Mul(IEEE, f32(0x3f7fffff), min), 0x00800000},
		{"tie FTZ", Mul(FTZ, f32(0x3f7fffff), min), 0x00000000},
		{"tie FTZDAZ", Mul(FTZDAZ, f32(0x3f7fffff), min), 0x00000000},
		{"tie ArmFZ", Mul(ArmFZ, f32(0x3f7fffff), min), 0x00000000},
		{"tie negative FTZ", Mul(FTZ, f32(0xbf7fffff), min), 0x80000000},
		// FMA against mul+add under FTZ.
		{"fma FTZ", FMA(FTZ, f32(0x20000000), f32(0x1f800000), f32(0x00c00000)), 0x01000000},
		{"mul_add FTZ", MulAdd(FTZ, f32(0x20000000), f32(0x1f800000), f32(0x00c00000)), 0x00c00000},
		// fma(-2^-127, 1, +0): FTZ keeps the input and flushes to -0; DAZ
		// zeroes the input, and -0*1 + +0 = +0.
		{"signed zero FTZ", FMA(FTZ, -0x1p-127, 1, 0), 0x80000000},
		{"signed zero DAZ", FMA(DAZ, -0x1p-127, 1, 0), 0x00000000},
		{"signed zero IEEE", FMA(IEEE, -0x1p-127, 1, 0), math.Float32bits(-0x1p-127)},
		// The double-rounding counterexample: float32(math.FMA(...)) gives
		// 0x3f800002, one rounding gives 0x3f800001.
		{"double rounding", FMA(IEEE, (1+0x1p-23)*0x1p-24, 1-0x1p-23, 1+0x1p-23), 0x3f800001},
	}
	for _, c := range cases {
		if got := math.Float32bits(c.got); got != c.want {
			t.Errorf("%s: got %08x, want %08x", c.name, got, c.want)
		}
	}
	// The band 2^-126 - 2^-151 <= |x| < 2^-126: x86 keeps ±min, Arm flushes.
	// 2^-126 - 2^-151 = min * (1 - 2^-25) is an FMA result: min + (-min*2^-25).
	a, b := min, float32(-0x1p-25)
	if got := FMA(FTZ, a, b, min); math.Float32bits(got) != 0x00800000 {
		t.Errorf("band edge FTZ: got %08x, want 00800000", math.Float32bits(got))
	}
	if got := FMA(ArmFZ, a, b, min); math.Float32bits(got) != 0 {
		t.Errorf("band edge ArmFZ: got %08x, want 00000000", math.Float32bits(got))
	}
	// Just below the band edge, x86 flushes too.
	if got := FMA(FTZ, a, -0x1p-25-0x1p-48, min); math.Float32bits(got) != 0 {
		t.Errorf("below band FTZ: got %08x, want 00000000", math.Float32bits(got))
	}
	// DAZ on each FMA operand: a subnormal in any position reads as zero.
	sub := f32(0x00400000)
	for i, got := range []float32{FMA(DAZ, sub, 1, 1), FMA(DAZ, 1, sub, 1), FMA(DAZ, 1, 1, sub)} {
		want := float32(1)
		if i == 2 {
			want = 1 // 1*1 + 0
		}
		if got != want {
			t.Errorf("DAZ operand %d: got %v, want %v", i, got, want)
		}
	}
	if got := FMA(DAZ, 0x1p100, sub, 0); math.Float32bits(got) != 0 {
		t.Errorf("DAZ a-subnormal product: got %08x, want 0", math.Float32bits(got))
	}
	if got := FMA(FTZ, 0x1p100, sub, 0); got != 0x1p100*0x1p-127 {
		t.Errorf("FTZ keeps subnormal inputs: got %v", got)
	}
	// The article: a = 0.4 min, b = 0.5 min, c = 1/min under FTZ+DAZ.
	am, bm, cm := float32(0.4)*min, float32(0.5)*min, 1/min
	lhs := Mul(FTZDAZ, Add(FTZDAZ, am, bm), cm)
	rhs := Add(FTZDAZ, Mul(IEEE, am, cm), Mul(IEEE, bm, cm))
	if lhs != 0 || math.Abs(float64(rhs)-0.9) > 1e-6 {
		t.Errorf("article example: (a+b)c = %v (want 0), ac+bc = %v (want 0.9)", lhs, rhs)
	}
}

// exactRat returns the exact value of op and the sign an exact zero takes
// under round-to-nearest-even, with inputs already DAZ-adjusted.
func exactRat(op string, a, b, c float32) (x *big.Rat, negZero bool, special bool) {
	for _, v := range []float32{a, b, c} {
		if math.IsInf(float64(v), 0) || v != v {
			return nil, false, true
		}
	}
	ra := new(big.Rat).SetFloat64(float64(a))
	rb := new(big.Rat).SetFloat64(float64(b))
	rc := new(big.Rat).SetFloat64(float64(c))
	prodNeg := math.Signbit(float64(a)) != math.Signbit(float64(b))
	switch op {
	case "mul":
		return new(big.Rat).Mul(ra, rb), prodNeg, false
	case "add":
		s := new(big.Rat).Add(ra, rb)
		return s, math.Signbit(float64(a)) && math.Signbit(float64(b)) && a == 0 && b == 0, false
	case "fma":
		p := new(big.Rat).Mul(ra, rb)
		s := new(big.Rat).Add(p, rc)
		return s, p.Sign() == 0 && prodNeg && c == 0 && math.Signbit(float64(c)), false
	case "div":
		if b == 0 {
			return nil, false, true
		}
		return new(big.Rat).Quo(ra, rb), prodNeg, false
	}
	panic(op)
}

// oracle computes op in env from big.Rat arithmetic alone: an implementation
// independent of the float64 tricks in reference.go.
func oracle(env Env, op string, a, b, c float32) (float32, bool) {
	if op == "mul_add" {
		p, ok := oracle(env, "mul", a, b, 0)
		if !ok {
			return 0, false
		}
		return oracle(env, "add", p, c, 0)
	}
	a, b, c = daz(env, a), daz(env, b), daz(env, c)
	x, negZero, special := exactRat(op, a, b, c)
	if special {
		return 0, false
	}
	if x.Sign() == 0 {
		if negZero {
			return float32(math.Copysign(0, -1)), true
		}
		return 0, true
	}
	abs := new(big.Rat).Abs(x)
	if env.FlushesOutputs() {
		limit := new(big.Rat).SetFloat64(tinyX86)
		if env.TinyBeforeRounding() {
			limit = new(big.Rat).SetFloat64(tinyArm)
		}
		if abs.Cmp(limit) < 0 {
			if x.Sign() < 0 {
				return float32(math.Copysign(0, -1)), true
			}
			return 0, true
		}
	}
	f, _ := abs.Float32()
	if x.Sign() < 0 {
		f = -f
	}
	return f, true
}

func refOp(env Env, op string, a, b, c float32) float32 {
	switch op {
	case "mul":
		return Mul(env, a, b)
	case "add":
		return Add(env, a, b)
	case "fma":
		return FMA(env, a, b, c)
	case "mul_add":
		return MulAdd(env, a, b, c)
	case "div":
		return Div(env, a, b)
	}
	panic(op)
}

// boundaryOperands returns float32 values around the places where rounding
// and flushing decide: zero, the subnormal range, 2^-126, one, and the
// powers that bring products near 2^-126.
func boundaryOperands() []float32 {
	var out []float32
	exps := []int{0, 1, 2, 63, 64, 65, 100, 101, 102, 125, 126, 127, 128, 129, 150, 151, 152, 188, 189, 190, 253, 254}
	sigs := []uint32{0, 1, 2, 0x7fffff, 0x7ffffe, 0x400000, 0x3fffff, 0x400001}
	for _, e := range exps {
		for _, s := range sigs {
			for _, sign := range []uint32{0, 0x80000000} {
				out = append(out, f32(sign|uint32(e)<<23|s))
			}
		}
	}
	return out
}

// weightedRandom returns a random float32 whose exponent is drawn near the
// interesting ranges far more often than uniformly.
func weightedRandom(r *rand.Rand) float32 {
	var e uint32
	switch r.IntN(4) {
	case 0:
		e = uint32(r.IntN(4)) // subnormal and the lowest normals
	case 1:
		e = uint32(60 + r.IntN(10)) // near 2^-63: products near 2^-126
	case 2:
		e = uint32(120 + r.IntN(14)) // near 1
	default:
		e = uint32(r.IntN(255))
	}
	return f32(uint32(r.IntN(2))<<31 | e<<23 | uint32(r.IntN(1<<23)))
}

// TestReferenceAgainstRationalOracle checks the float64 method against exact
// rational arithmetic in all five environments, including ArmFZ, whose
// hardware this machine does not have.
func TestReferenceAgainstRationalOracle(t *testing.T) {
	ops := []string{"mul", "add", "fma", "mul_add", "div"}
	vals := boundaryOperands()
	r := rand.New(rand.NewPCG(1, 2))
	n := 60000
	if testing.Short() {
		n = 8000
	}
	check := func(env Env, op string, a, b, c float32) {
		want, ok := oracle(env, op, a, b, c)
		if !ok {
			return
		}
		if got := refOp(env, op, a, b, c); !sameBits(got, want) {
			t.Fatalf("%v %s(%08x, %08x, %08x): reference %08x, exact oracle %08x", env, op,
				math.Float32bits(a), math.Float32bits(b), math.Float32bits(c), math.Float32bits(got), math.Float32bits(want))
		}
	}
	for _, env := range Envs {
		for _, op := range ops {
			for i := 0; i < n; i++ {
				var a, b, c float32
				if i%2 == 0 {
					a, b, c = vals[r.IntN(len(vals))], vals[r.IntN(len(vals))], vals[r.IntN(len(vals))]
				} else {
					a, b, c = weightedRandom(r), weightedRandom(r), weightedRandom(r)
				}
				// Steer half the fma/mul_add cases so the sum lands near 2^-126.
				if (op == "fma" || op == "mul_add") && i%4 == 1 {
					c = float32(math.Copysign(float64(f32(0x00800000|uint32(r.IntN(1<<20)))), float64(-a*b)))
				}
				check(env, op, a, b, c)
			}
		}
	}
}

// FuzzReference lets the fuzzer hunt for disagreements between the float64
// method and the exact rational oracle.
func FuzzReference(f *testing.F) {
	f.Add(uint8(1), uint8(0), uint32(0x3f7fffff), uint32(0x00800000), uint32(0))
	f.Add(uint8(1), uint8(2), uint32(0x20000000), uint32(0x1f800000), uint32(0x00c00000))
	f.Add(uint8(4), uint8(2), uint32(0x00800000), uint32(0xb3000000), uint32(0x00800000))
	f.Fuzz(func(t *testing.T, envB, opB uint8, a, b, c uint32) {
		env := Envs[int(envB)%len(Envs)]
		op := []string{"mul", "add", "fma", "mul_add", "div"}[int(opB)%5]
		want, ok := oracle(env, op, f32(a), f32(b), f32(c))
		if !ok {
			return
		}
		if got := refOp(env, op, f32(a), f32(b), f32(c)); !sameBits(got, want) {
			t.Fatalf("%v %s(%08x, %08x, %08x): reference %08x, oracle %08x", env, op, a, b, c,
				math.Float32bits(got), math.Float32bits(want))
		}
	})
}

// TestReferenceIEEEMatchesGo checks the IEEE environment against Go's own
// float32 arithmetic, which is IEEE round-to-nearest on every platform for
// single operations.
func TestReferenceIEEEMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200000; i++ {
		a, b := weightedRandom(r), weightedRandom(r)
		if got, want := Mul(IEEE, a, b), a*b; !sameBits(got, want) {
			t.Fatalf("Mul(%08x, %08x) = %08x, Go %08x", math.Float32bits(a), math.Float32bits(b), math.Float32bits(got), math.Float32bits(want))
		}
		if got, want := Add(IEEE, a, b), a+b; !sameBits(got, want) {
			t.Fatalf("Add(%08x, %08x) = %08x, Go %08x", math.Float32bits(a), math.Float32bits(b), math.Float32bits(got), math.Float32bits(want))
		}
		if got, want := Div(IEEE, a, b), a/b; !sameBits(got, want) {
			t.Fatalf("Div(%08x, %08x) = %08x, Go %08x", math.Float32bits(a), math.Float32bits(b), math.Float32bits(got), math.Float32bits(want))
		}
	}
}
