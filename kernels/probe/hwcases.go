package probe

// Test cases for the scalar operations, built where the contract's
// behaviours live: at 2^-126, in the band just below it, at exact ties and on
// both sides of zero. Tests check the reference against the hardware on
// them, and cmd/ftzcheck writes them, with this CPU's results, as a vector
// file. Three kinds:
//
//   - EdgeCases: the hand-built examples of float-semantics.md;
//   - TestFloatLevel1: J. Hauser's TestFloat method (level 1), sign/exponent
//     patterns near the boundaries OR-ed with the significand patterns 0, 1,
//     0x7FFFFF and 0x7FFFFE, every combination mixed with weighted random
//     operands (9·88³ = 6,133,248 three-operand cases, 6·88² = 46,464
//     two-operand ones);
//   - RandomCases: weighted random operands, a third of them aimed at results
//     near ±2^-126.
//
// Everything is deterministic in the seed (math/rand/v2's PCG is stable), so
// a failure names a reproducible case.

import (
	"iter"
	"math"
	"math/rand/v2"
)

// Triple holds the operands of one case; C is unused by two-operand ops.
type Triple struct{ A, B, C float32 }

// EdgeCase is a hand-built case with the reason it exists.
type EdgeCase struct {
	Op      Op
	A, B, C uint32
	Why     string
}

// Triple returns the case's operands as floats.
func (e EdgeCase) Triple() Triple {
	return Triple{math.Float32frombits(e.A), math.Float32frombits(e.B), math.Float32frombits(e.C)}
}

// EdgeCases returns the hand-built cases of the contract. Each is listed with
// the op it was built for, both signs where the sign matters; callers run
// them under every environment.
func EdgeCases() []EdgeCase {
	const (
		min     = 0x00800000 // 2^-126
		halfMin = 0x00400000 // 2^-127, subnormal
		one     = 0x3f800000
		two     = 0x40000000
		neg     = 0x80000000
		qnan    = 0x7fc00000
		snan    = 0x7fa00000
		inf     = 0x7f800000
		maxSub  = 0x007fffff
	)
	cases := []EdgeCase{
		// The tie: exact 2^-126 - 2^-150 rounds up to min under IEEE, but x86
		// rounds to 24 bits with unbounded exponent first, so FTZ flushes.
		{OpMul, 0x3f7fffff, min, 0, "tie 0x3f7fffff*min: IEEE min, FTZ 0"},
		{OpMul, min, 0x3f7fffff, 0, "tie, operands swapped"},
		{OpMul, 0xbf7fffff, min, 0, "tie, negative: FTZ gives -0"},
		// The band [2^-126 - 2^-151, 2^-126): x86 keeps min, Arm flushes.
		{OpMul, 0x3f000001, 0x00fffffe, 0, "band: exact (1-2^-46)*2^-126, x86 min, Arm 0"},
		{OpMul, 0xbf000001, 0x00fffffe, 0, "band, negative"},
		{OpFMA, 0x1a000000, 0x99800000, min, "band lower edge: 2^-126 - 2^-151 exactly (x86 min)"},
		{OpFMA, 0x1a000001, 0x99800000, min, "just below the band: 2^-126 - 2^-151 - 2^-174 (x86 flushes)"},
		{OpFMA, 0x1a000000, 0x19800000, 0x807fffff, "2^-151 - (2^-126 - 2^-149): negative, IEEE exact subnormal"},
		{OpMulAdd, 0x3f000001, 0x00fffffe, 0, "band through mul then add"},
		// DAZ on each FMA operand.
		{OpFMA, halfMin, two, min, "DAZ on a: IEEE 2^-125, DAZ 2^-126"},
		{OpFMA, two, halfMin, min, "DAZ on b"},
		{OpFMA, min, one, halfMin, "DAZ on c: IEEE 1.5*2^-126, DAZ 2^-126"},
		{OpFMA, neg | halfMin, two, min, "DAZ on a, negative subnormal"},
		{OpFMA, min, one, neg | maxSub, "DAZ on c, largest negative subnormal: IEEE 2^-149, DAZ 2^-126"},
		{OpMul, maxSub, 0x4b000000, 0, "subnormal * 2^23: IEEE normal, DAZ 0"},
		{OpAdd, halfMin, halfMin, 0, "subnormal + subnormal = min under IEEE/FTZ, 0 under DAZ"},
		{OpAdd, halfMin, neg | halfMin, 0, "x + -x = +0"},
		{OpDiv, halfMin, 0x3f000000, 0, "subnormal / 0.5"},
		{OpDiv, one, halfMin, 0, "1 / subnormal: IEEE 2^127, DAZ +inf"},
		{OpDiv, min, 0x3f800001, 0, "min / (1+2^-23): tiny quotient, flushed under FTZ"},
		// FTZ's -0 against DAZ's +0: fma(-2^-127, 1, +0).
		{OpFMA, neg | halfMin, one, 0, "FTZ -0, DAZ +0"},
		{OpMulAdd, neg | halfMin, one, 0, "FTZ -0, DAZ +0, unfused"},
		{OpMul, neg | halfMin, one, 0, "-subnormal * 1: exact but tiny, so FTZ flushes it to -0 too"},
		{OpMul, neg | 0x3e800000, 0x00800001, 0, "-0.25 * (min+ulp): tiny negative, flushed to -0"},
		// FMA against mul+add under FTZ.
		{OpFMA, 0x20000000, 0x1f800000, 0x00c00000, "FTZ: fma 0x01000000"},
		{OpMulAdd, 0x20000000, 0x1f800000, 0x00c00000, "FTZ: mul+add 0x00c00000"},
		// mul_add under DAZ only: the subnormal product is read as zero by the add.
		{OpMulAdd, 0x3f000000, min, min, "DAZ reads the subnormal product as 0"},
		// The double-rounding counterexample: one rounding gives 0x3f800001,
		// float32(math.FMA(...)) gives 0x3f800002.
		{OpFMA, 0x33800001, 0x3f7ffffe, 0x3f800001, "double rounding"},
		// Zeros, infinities and NaNs.
		{OpMul, 0, inf, 0, "0*inf = NaN"},
		{OpAdd, inf, neg | inf, 0, "inf-inf = NaN"},
		{OpDiv, 0, 0, 0, "0/0 = NaN"},
		{OpDiv, neg | one, 0, 0, "-1/+0 = -inf"},
		{OpAdd, neg, neg, 0, "-0 + -0 = -0"},
		{OpAdd, neg, 0, 0, "-0 + +0 = +0"},
		{OpFMA, neg, 0, neg, "-0*+0 + -0 = -0"},
		{OpFMA, qnan, one, one, "quiet NaN propagates"},
		{OpMul, snan, one, 0, "signalling NaN is quieted"},
		{OpFMA, 0x7f7fffff, 0x7f7fffff, neg | inf, "overflowing product + -inf"},
		{OpMul, 0x7f7fffff, two, 0, "overflow to inf"},
		{OpMul, 0x00000001, 0x00000001, 0, "smallest subnormal squared"},
	}
	return cases
}

// newCaseRand returns the deterministic generator for seed.
func newCaseRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
}

// tfExponents are sign/exponent patterns at the boundaries: subnormal, the
// smallest normal, around 1, the largest, infinity/NaN, both signs.
var tfExponents = [22]uint32{
	0x00000000, 0x00800000, 0x33800000, 0x3E800000, 0x3F000000, 0x3F800000,
	0x40000000, 0x40800000, 0x4B800000, 0x7F000000, 0x7F800000,
	0x80000000, 0x80800000, 0xB3800000, 0xBE800000, 0xBF000000, 0xBF800000,
	0xC0000000, 0xC0800000, 0xCB800000, 0xFE800000, 0xFF800000,
}

// tfSignificands are the level-1 significand patterns.
var tfSignificands = [4]uint32{0, 1, 0x7FFFFF, 0x7FFFFE}

// tfPatterns is every exponent pattern OR-ed with every significand pattern.
var tfPatterns = func() []uint32 {
	var p []uint32
	for _, e := range tfExponents {
		for _, s := range tfSignificands {
			p = append(p, e|s)
		}
	}
	return p
}()

// randomExponents are more sign/exponent patterns for random operands: the
// level-1 ones plus those whose products and quotients land near 2^-126
// (about ±2^-63 squared, 2^-126 times small powers of two).
var randomExponents = func() []uint32 {
	e := append([]uint32(nil), tfExponents[:]...)
	for _, x := range []int{-125, -124, -100, -64, -63, -62, -4, -3, 3, 4, 29, 30, 31, 62, 63, 64, 126} {
		b := uint32(x+127) << 23
		e = append(e, b, 0x80000000|b)
	}
	return e
}()

// randomSignificand is a structured significand: runs of ones and zeros at
// either end, single bits, or a sum of two of them, as TestFloat does.
func randomSignificand(r *rand.Rand) uint32 {
	pattern := func() uint32 {
		k := r.IntN(24)
		switch r.IntN(4) {
		case 0:
			return (1 << k) & 0x7FFFFF // one bit (or 0)
		case 1:
			return 0x7FFFFF &^ ((1 << k) - 1) // ones at the top
		case 2:
			return (1 << k) - 1 // ones at the bottom
		default:
			return 0x7FFFFF &^ (1 << k) // all ones but one
		}
	}
	if r.IntN(2) == 0 {
		return pattern()
	}
	return (pattern() + pattern()) & 0x7FFFFF
}

// randomFloat returns a weighted random float32: a boundary exponent with a
// structured or uniform significand, or an exponent weighted toward the
// middle of the range, or uniform bits.
func randomFloat(r *rand.Rand) float32 {
	var b uint32
	switch r.IntN(8) {
	case 0, 1, 2:
		b = randomExponents[r.IntN(len(randomExponents))] | randomSignificand(r)
	case 3:
		b = randomExponents[r.IntN(len(randomExponents))] | r.Uint32()&0x7FFFFF
	case 4, 5:
		// Exponents within 2^±k of 1, k itself random: small k dominates.
		k := r.IntN(8)
		e := 127 + r.IntN(1<<k) - r.IntN(1<<k)
		b = uint32(r.IntN(2))<<31 | uint32(e)<<23 | randomSignificand(r)
	case 6:
		b = r.Uint32()
	default:
		// Subnormal or near the smallest normal.
		b = uint32(r.IntN(2))<<31 | uint32(r.IntN(3))<<23 | randomSignificand(r)
	}
	return math.Float32frombits(b)
}

// nearMin returns a random value within a few ulps of ±2^-126·2^shift.
func nearMin(r *rand.Rand, shift int) float32 {
	v := float32(math.Ldexp(1, -126+shift))
	b := int64(math.Float32bits(v)) + int64(r.IntN(9)-4)
	if r.IntN(2) == 0 {
		b |= 0x80000000
	}
	return math.Float32frombits(uint32(b))
}

// aimedTriple returns operands whose product (or quotient, or fma result) is
// within a few ulps of ±2^-126 or of its band: b is 2^-126/a rounded,
// perturbed by a few ulps; c is a small multiple of 2^-126 or the negated
// product, so that cancellation lands there too.
func aimedTriple(r *rand.Rand) Triple {
	// a normal with exponent in [-100, 0], so that b = 2^-126/a stays normal.
	a := math.Float32frombits(uint32(r.IntN(101)+27)<<23 | randomSignificand(r))
	if r.IntN(2) == 0 {
		a = -a
	}
	target := math.Ldexp(1, -126+r.IntN(3)-1) // 2^-127, 2^-126 or 2^-125
	b := float32(target / float64(a))
	b = math.Float32frombits(uint32(int64(math.Float32bits(b)) + int64(r.IntN(7)-3)))
	if r.IntN(2) == 0 {
		b = -b
	}
	var c float32
	switch r.IntN(4) {
	case 0:
		c = 0
	case 1:
		c = nearMin(r, r.IntN(3)-1)
	case 2:
		// -(a*b) rounded, plus a few ulps: fma keeps only the residue.
		p := -float32(float64(a) * float64(b))
		c = math.Float32frombits(uint32(int64(math.Float32bits(p)) + int64(r.IntN(5)-2)))
	default:
		c = randomFloat(r)
	}
	if r.IntN(4) == 0 {
		// For div: a/b near 2^-126 means b near a*2^126.
		b = float32(float64(a) / target)
	}
	return Triple{a, b, c}
}

// RandomCases yields n weighted random cases from seed: two thirds weighted
// random operands, one third aimed at results near ±2^-126.
func RandomCases(n int, seed uint64) iter.Seq[Triple] {
	return func(yield func(Triple) bool) {
		r := newCaseRand(seed)
		for i := 0; i < n; i++ {
			var t Triple
			if i%3 == 2 {
				t = aimedTriple(r)
			} else {
				t = Triple{randomFloat(r), randomFloat(r), randomFloat(r)}
			}
			if !yield(t) {
				return
			}
		}
	}
}

// TestFloatLevel1Count is the number of cases TestFloatLevel1 yields.
func TestFloatLevel1Count(operands int) int {
	n := len(tfPatterns)
	if operands == 3 {
		return 9 * n * n * n
	}
	return 6 * n * n
}

// TestFloatLevel1 yields TestFloat's level-1 cases for an operation with the
// given number of operands (2 or 3): every combination of the 88 boundary
// patterns, each combination accompanied by cases that replace some of its
// operands by weighted random values, as TestFloat interleaves them. For
// two-operand cases C is random and unused.
func TestFloatLevel1(operands int, seed uint64) iter.Seq[Triple] {
	return TestFloatLevel1Sample(operands, seed, 1)
}

// TestFloatLevel1Sample yields the cases of every stride-th pattern
// combination of TestFloatLevel1 (all of them for stride 1), without
// generating the others: each combination draws its random operands from
// its own generator, seeded by seed and the combination's index, so a
// sample holds exactly the cases the full set has there.
func TestFloatLevel1Sample(operands int, seed uint64, stride int) iter.Seq[Triple] {
	stride = max(stride, 1)
	return func(yield func(Triple) bool) {
		pcg := rand.NewPCG(0, 0)
		r := rand.New(pcg)
		p := tfPatterns
		n := len(p)
		f := func(i int) float32 { return math.Float32frombits(p[i]) }
		rnd := func() float32 { return randomFloat(r) }
		if operands != 3 {
			for idx := 0; idx < n*n; idx += stride {
				pcg.Seed(seed, uint64(idx))
				a, b := f(idx/n), f(idx%n)
				// pattern × pattern, pattern × random, random × pattern,
				// and three random pairs.
				for _, t := range [6]Triple{
					{a, b, 0}, {a, rnd(), 0}, {rnd(), b, 0},
					{rnd(), rnd(), 0}, {rnd(), rnd(), 0}, {rnd(), rnd(), 0},
				} {
					if !yield(t) {
						return
					}
				}
			}
			return
		}
		for idx := 0; idx < n*n*n; idx += stride {
			pcg.Seed(seed, uint64(idx))
			a, b, c := f(idx/(n*n)), f(idx/n%n), f(idx%n)
			// Every subset of the operands taken from the patterns: all
			// three, each pair, each single one, and none (twice).
			for _, t := range [9]Triple{
				{a, b, c},
				{a, b, rnd()}, {a, rnd(), c}, {rnd(), b, c},
				{a, rnd(), rnd()}, {rnd(), b, rnd()}, {rnd(), rnd(), c},
				{rnd(), rnd(), rnd()}, {rnd(), rnd(), rnd()},
			} {
				if !yield(t) {
					return
				}
			}
		}
	}
}
