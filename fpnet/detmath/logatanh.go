package detmath

import "math"

// Deterministic float64 helpers built only from +, −, ×, ÷ and math.Sqrt
// (correctly rounded everywhere). Every product is converted explicitly so
// the compiler cannot fuse it into an FMA (it always may on arm64): the
// result has the same bits on every platform.

// LogAtanh returns the natural logarithm of x for finite x > 0 by the
// series of 2·atanh((m−1)/(m+1)). It is accurate to about 1 ulp, which is
// all the Gaussian transform needs; what matters is that it gives the same
// bits everywhere.
//
// There are two logarithms here on purpose. Log (the msun algorithm) and
// LogAtanh are both within about 1 ulp of the true value but differ in the
// last bit for some arguments. ES's noise table is built with LogAtanh, and
// its golden hash (and so every ES run's parameters) depends on those bits;
// the loss and the initialiser use Log, with goldens of their own. Merging
// them would change one set of goldens, so both stay, named by method.
func LogAtanh(x float64) float64 {
	if !(x > 0) || math.IsInf(x, 1) {
		panic("detmath: LogAtanh argument must be finite and positive")
	}
	// Split x = m·2^e with m in [√½, √2): exact bit manipulation.
	b := math.Float64bits(x)
	e := int((b>>52)&0x7ff) - 1023
	if e == -1023 { // subnormal: normalise by 2^54 first
		b = math.Float64bits(x * (1 << 54))
		e = int((b>>52)&0x7ff) - 1023 - 54
	}
	m := math.Float64frombits(b&^(0x7ff<<52) | 1023<<52) // in [1, 2)
	if m > math.Sqrt2 {
		m /= 2
		e++
	}
	// log m = 2 atanh f, f = (m−1)/(m+1), |f| ≤ 0.1716:
	// 2f (1 + s/3 + s²/5 + ...), s = f², summed from the small end.
	f := (m - 1) / (m + 1)
	s := float64(f * f)
	p := 1.0 / 23 // coefficient of s^11
	for k := 11; k >= 1; k-- {
		p = float64(p*s) + 1/float64(2*k-1)
	}
	logm := float64(2 * f * p)
	fe := float64(e)
	return float64(fe*ln2Hi) + (logm + float64(fe*ln2Lo))
}
