package kernels

// The exact pure-Go reference arithmetic: float32 results, to the bit, for
// every denormal environment. It is the oracle that every assembly kernel and
// every hardware probe is checked against.
//
// Method (float-semantics.md, "The Go runtime and compiler"):
//  1. Compute the exact result, or its round-to-odd float64 value v. A float64
//     product of two float32 values is exact; a sum is made round-to-odd with
//     TwoSum; a quotient with its exact FMA remainder. Round-to-odd to 53 bits
//     and then round-to-nearest-even to 24 bits is one correct rounding
//     (Boldo–Melquiond), also for subnormal and overflowing results.
//  2. Decide tininess on v against thresholds that are exact in float64, and
//     compare exactly on v because round-to-odd keeps the side of any number
//     with fewer than 53 significant bits.
//  3. Otherwise convert v to float32.
//
// No expression here has the shape a*b+c, so nothing depends on whether the
// compiler fuses; every product is still wrapped in float64(...), which
// forbids fusion, to keep it so under later edits.

import "math"

const (
	// tinyX86 is 2^-126 - 2^-151: x86 decides tininess after rounding to 24
	// bits with an unbounded exponent, so the exact results in
	// [2^-126 - 2^-151, 2^-126) round up to the smallest normal and stay.
	tinyX86 = 0x1p-126 - 0x1p-151
	// tinyArm is 2^-126: Arm decides tininess on the exact result.
	tinyArm = 0x1p-126
)

// daz returns x read as the environment reads inputs: a subnormal becomes a
// zero of the same sign where the environment zeroes inputs.
func daz(env Env, x float32) float32 {
	if env.ZeroesInputs() {
		b := math.Float32bits(x)
		if b&expMask == 0 {
			return math.Float32frombits(b & signMask)
		}
	}
	return x
}

// finish turns v, the exact result or its round-to-odd float64 value, into
// the environment's float32 result.
func finish(env Env, v float64) float32 {
	if env.FlushesOutputs() && v != 0 {
		limit := tinyX86
		if env.TinyBeforeRounding() {
			limit = tinyArm
		}
		if math.Abs(v) < limit {
			// A flushed result is a zero with the sign of the exact result.
			return float32(math.Copysign(0, v))
		}
	}
	return float32(v)
}

// roundToOdd returns the round-to-odd value of s+err, where s is the
// round-to-nearest value of some exact x and err = x - s exactly.
func roundToOdd(s, err float64) float64 {
	if err == 0 || math.IsInf(s, 0) || math.IsNaN(s) {
		return s
	}
	bits := math.Float64bits(s)
	if bits&1 == 1 {
		return s // already odd: round-to-odd keeps it
	}
	// Step one ulp toward the exact value. Sign-magnitude bits: a step up in
	// magnitude is +1 whatever the sign.
	if (err > 0) == (s > 0) {
		bits++
	} else {
		bits--
	}
	return math.Float64frombits(bits)
}

// exactSum returns the round-to-odd float64 value of p + c, where p and c are
// float64 values whose exact sum has no float64 underflow or overflow (true
// for sums of float32 values and float32 products).
func exactSum(p, c float64) float64 {
	s := p + c
	if math.IsInf(s, 0) || math.IsNaN(s) {
		return s
	}
	// TwoSum (Knuth): err = (p + c) - s exactly.
	bb := s - p
	err := (p - (s - bb)) + (c - bb)
	return roundToOdd(s, err)
}

// FMA returns a*b + c rounded once, in env: DAZ applies to all three
// operands, the product is neither rounded nor flushed, and the flush test
// runs on the single rounded result.
func FMA(env Env, a, b, c float32) float32 {
	a, b, c = daz(env, a), daz(env, b), daz(env, c)
	p := float64(float64(a) * float64(b)) // exact: 48 significant bits at most
	return finish(env, exactSum(p, float64(c)))
}

// Mul returns a*b in env.
func Mul(env Env, a, b float32) float32 {
	a, b = daz(env, a), daz(env, b)
	return finish(env, float64(float64(a)*float64(b))) // exact
}

// Add returns a+b in env. A tiny exact sum is always representable, so the
// x86 and Arm tininess rules agree here.
func Add(env Env, a, b float32) float32 {
	a, b = daz(env, a), daz(env, b)
	return finish(env, exactSum(float64(a), float64(b)))
}

// Sub returns a-b in env.
func Sub(env Env, a, b float32) float32 {
	return Add(env, a, -b)
}

// MulAdd returns a*b rounded (and flushed) in env, then plus c in env: the
// unfused form, which differs from FMA under flushing.
func MulAdd(env Env, a, b, c float32) float32 {
	return Add(env, Mul(env, a, b), c)
}

// Div returns a/b in env.
func Div(env Env, a, b float32) float32 {
	a, b = daz(env, a), daz(env, b)
	fa, fb := float64(a), float64(b)
	q := fa / fb
	if q == 0 || math.IsInf(q, 0) || math.IsNaN(q) {
		// Zero, infinite or NaN quotients of float32 operands are exact.
		return finish(env, q)
	}
	// The remainder of a round-to-nearest quotient is exact: r = a - q*b.
	// The exact quotient is q + r/b, so the error has the sign of r*b.
	r := math.FMA(-q, fb, fa)
	errSign := r
	if fb < 0 {
		errSign = -r
	}
	return finish(env, roundToOdd(q, errSign))
}

// SameResult compares two results as the contract does: bit for bit, signed
// zeros included, except that any NaN equals any NaN (x86 and Arm differ in
// default NaNs and in which operand's payload they propagate).
func SameResult(x, y float32) bool {
	if x != x && y != y {
		return true
	}
	return math.Float32bits(x) == math.Float32bits(y)
}
