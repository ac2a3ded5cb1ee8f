package detmath

import "math"

// Deterministic elementary functions. math.Exp and math.Log are assembly on
// some architectures and may differ in the last bit; anything that feeds the
// parameters (initial noise, loss, gradients) must give the same bits
// everywhere. These are the FreeBSD msun algorithms (as in Go's pure-Go
// math.exp and math.log) written with an explicit conversion around every
// product that meets an add, so no compiler may fuse it into an FMA.
// Accuracy is within 1 ulp, which is all the loss needs.

// Sqrt is math.Sqrt: correctly rounded on every platform, so deterministic.
func Sqrt(x float64) float64 { return math.Sqrt(x) }

const (
	ln2Hi = 6.93147180369123816490e-01
	ln2Lo = 1.90821492927058770002e-10
	log2e = 1.44269504088896338700e+00
)

// Exp returns e^x.
func Exp(x float64) float64 {
	const (
		overflow  = 7.09782712893383973096e+02
		underflow = -7.45133219101941108420e+02
		nearZero  = 1.0 / (1 << 28)
		p1        = 1.66666666666666657415e-01
		p2        = -2.77777777770155933842e-03
		p3        = 6.61375632143793436117e-05
		p4        = -1.65339022054652515390e-06
		p5        = 4.13813679705723846039e-08
	)
	switch {
	case x != x || x > overflow:
		if x != x {
			return x
		}
		return math.Inf(1)
	case x < underflow:
		return 0
	case -nearZero < x && x < nearZero:
		return 1 + x
	}
	var k int
	switch {
	case x < 0:
		k = int(float64(log2e*x) - 0.5)
	case x > 0:
		k = int(float64(log2e*x) + 0.5)
	}
	hi := x - float64(float64(k)*ln2Hi)
	lo := float64(k) * ln2Lo
	r := hi - lo
	t := float64(r * r)
	poly := p4 + float64(t*p5)
	poly = p3 + float64(t*poly)
	poly = p2 + float64(t*poly)
	poly = p1 + float64(t*poly)
	c := r - float64(t*poly)
	y := 1 - ((lo - float64(r*c)/(2-c)) - hi)
	return Ldexp(y, k)
}

// Log returns the natural logarithm of x.
func Log(x float64) float64 {
	const (
		l1 = 6.666666666666735130e-01
		l2 = 3.999999999940941908e-01
		l3 = 2.857142874366239149e-01
		l4 = 2.222219843214978396e-01
		l5 = 1.818357216161805012e-01
		l6 = 1.531383769920937332e-01
		l7 = 1.479819860511658591e-01
	)
	switch {
	case x != x || math.IsInf(x, 1):
		return x
	case x < 0:
		return math.NaN()
	case x == 0:
		return math.Inf(-1)
	}
	f1, ki := Frexp(x)
	if f1 < math.Sqrt2/2 {
		f1 *= 2
		ki--
	}
	f := f1 - 1
	k := float64(ki)
	s := f / (2 + f)
	s2 := float64(s * s)
	s4 := float64(s2 * s2)
	t1 := l5 + float64(s4*l7)
	t1 = l3 + float64(s4*t1)
	t1 = l1 + float64(s4*t1)
	t1 = s2 * t1
	t2 := l4 + float64(s4*l6)
	t2 = l2 + float64(s4*t2)
	t2 = s4 * t2
	R := t1 + t2
	hfsq := float64(0.5*f) * f
	inner := float64(s*float64(hfsq+R)) + float64(k*ln2Lo)
	return float64(k*ln2Hi) - ((hfsq - inner) - f)
}

// Frexp splits a finite nonzero x into frac in [0.5, 1) and exp with
// x = frac·2^exp, by bit manipulation (exact everywhere).
func Frexp(x float64) (frac float64, exp int) {
	if x != 0 && math.Abs(x) < 0x1p-1022 { // subnormal: normalise first
		x *= 1 << 52
		exp = -52
	}
	b := math.Float64bits(x)
	exp += int((b>>52)&0x7ff) - 1022
	b &^= 0x7ff << 52
	b |= 1022 << 52
	return math.Float64frombits(b), exp
}

// Ldexp returns frac·2^exp; exact (a power-of-two scaling, done in two
// steps when 2^exp alone is not a normal float64).
func Ldexp(frac float64, exp int) float64 {
	for exp > 1023 {
		frac *= 0x1p1023
		exp -= 1023
	}
	for exp < -1022 {
		frac *= 0x1p-1022
		exp += 1022
		if frac == 0 {
			return frac
		}
	}
	return frac * math.Float64frombits(uint64(exp+1023)<<52)
}

// CosPi returns cos(π·x) for x in [0, 1], deterministically (Taylor series
// on a reduced argument, every product rounded on its own).
func CosPi(x float64) float64 {
	// cos(πx) = -cos(π(1-x)); reduce to [0, 0.5] then use sin for (0.25, 0.5].
	sign := 1.0
	if x > 0.5 {
		x = 1 - x
		sign = -1
	}
	t := math.Pi * x // in [0, π/2]
	t2 := float64(t * t)
	// cos t = Σ (-1)^k t^(2k)/(2k)!, 12 terms: error < 1e-16 on [0, π/2].
	sum, term := 1.0, 1.0
	for k := 1; k <= 12; k++ {
		term = -float64(term*t2) / float64((2*k-1)*(2*k))
		sum += term
	}
	return sign * sum
}
