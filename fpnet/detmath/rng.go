package detmath

import "math/bits"

// SplitMix64 is a small, fast, seedable PRNG (Steele, Lea, Flood 2014) whose
// stream is the same on every platform: integer arithmetic only.
type SplitMix64 struct{ State uint64 }

// Uint64 returns the next 64 random bits.
func (s *SplitMix64) Uint64() uint64 {
	s.State += 0x9e3779b97f4a7c15
	z := s.State
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Float64 returns a uniform value in [0, 1) with 53 random bits.
func (s *SplitMix64) Float64() float64 {
	return float64(s.Uint64()>>11) * 0x1p-53
}

// Intn returns a uniform value in [0, n), n > 0, without modulo bias
// (Lemire's multiply-shift with rejection).
func (s *SplitMix64) Intn(n int) int {
	if n <= 0 {
		panic("detmath: Intn needs n > 0")
	}
	bound := uint64(n)
	threshold := -bound % bound
	for {
		hi, lo := bits.Mul64(s.Uint64(), bound)
		if lo >= threshold {
			return int(hi)
		}
	}
}

// Shuffle permutes idx in place (Fisher–Yates), deterministically.
func (s *SplitMix64) Shuffle(idx []int) {
	for i := len(idx) - 1; i > 0; i-- {
		j := s.Intn(i + 1)
		idx[i], idx[j] = idx[j], idx[i]
	}
}

// Gaussian draws standard normal values by Marsaglia's polar method, which
// needs only a logarithm and a square root: both deterministic here, so the
// draws are the same bits on every platform.
type Gaussian struct {
	src    SplitMix64
	spare  float64
	cached bool
}

// NewGaussian seeds a standard normal source.
func NewGaussian(seed uint64) *Gaussian { return &Gaussian{src: SplitMix64{State: seed}} }

// Next returns the next N(0, 1) value.
func (g *Gaussian) Next() float64 {
	if g.cached {
		g.cached = false
		return g.spare
	}
	for {
		u := float64(2*g.src.Float64()) - 1
		v := float64(2*g.src.Float64()) - 1
		s := float64(u*u) + float64(v*v)
		if s >= 1 || s == 0 {
			continue
		}
		f := Sqrt(-2 * Log(s) / s)
		g.spare = v * f
		g.cached = true
		return u * f
	}
}
