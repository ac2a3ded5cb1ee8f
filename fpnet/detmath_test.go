package fpnet

import (
	"math"
	"testing"
)

func TestExpLogAccuracy(t *testing.T) {
	rng := SplitMix64{State: 3}
	for i := 0; i < 200000; i++ {
		x := (rng.Float64() - 0.5) * 1400
		got, want := exp64(x), math.Exp(x)
		if want != 0 && !math.IsInf(want, 0) && math.Abs(got-want) > 4.5e-16*want {
			t.Fatalf("exp64(%v) = %v, math.Exp %v", x, got, want)
		}
		y := math.Abs(x) * math.Pow(10, rng.Float64()*40-20)
		if y == 0 {
			continue
		}
		gl, wl := log64(y), math.Log(y)
		if math.Abs(gl-wl) > 2.3e-16*math.Max(1, math.Abs(wl)) {
			t.Fatalf("log64(%v) = %v, math.Log %v", y, gl, wl)
		}
	}
	for _, c := range []struct{ x, want float64 }{{0, 1}, {1, math.E}, {-1000, 0}, {1000, math.Inf(1)}} {
		if got := exp64(c.x); got != c.want {
			t.Errorf("exp64(%v) = %v, want %v", c.x, got, c.want)
		}
	}
	if log64(1) != 0 || !math.IsInf(log64(0), -1) || !math.IsNaN(log64(-1)) {
		t.Errorf("log64 special cases wrong: log(1)=%v log(0)=%v log(-1)=%v", log64(1), log64(0), log64(-1))
	}
	// ln(2^-1074) = -1074·ln 2. (amd64's assembly math.Log gets this wrong:
	// -709.09, as if the input were 2^-1023.)
	if got, want := log64(5e-324), -1074*math.Ln2; math.Abs(got-want) > 1e-12 {
		t.Errorf("log64(min subnormal) = %v, want %v", got, want)
	}
}

// A golden hash of deterministic draws: the same on every platform (checked
// under purego, amd64 and arm64 by make test).
func TestDeterministicDraws(t *testing.T) {
	g := NewGaussian(42)
	v := make([]float32, 4096)
	var sum, sq float64
	for i := range v {
		x := g.Next()
		v[i] = float32(x)
		sum += x
		sq += x * x
	}
	mean, variance := sum/4096, sq/4096-(sum/4096)*(sum/4096)
	if math.Abs(mean) > 0.05 || math.Abs(variance-1) > 0.06 {
		t.Errorf("Gaussian draws: mean %v, variance %v; want about 0 and 1", mean, variance)
	}
	var bits []float32
	for i := 0; i < 64; i++ {
		x := float64(i)/7 - 4
		bits = append(bits, float32(exp64(x)), float32(log64(float64(i)+0.5)), float32(cosPi(float64(i)/63)))
	}
	got := ParamsSHA256(append(v, bits...))
	const golden = "4eadc56d28c49bb8af506d4da31c48d91d5ffabe978d9f7b3e09abc258aa7209"
	if got != golden {
		t.Errorf("deterministic draws hash %s, golden %s: the PRNG, Gaussian, exp, log or cos changed or differ on this platform", got, golden)
	}
}
