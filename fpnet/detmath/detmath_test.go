package detmath

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"testing"
)

func TestExpLogAccuracy(t *testing.T) {
	rng := SplitMix64{State: 3}
	for i := 0; i < 200000; i++ {
		x := (rng.Float64() - 0.5) * 1400
		got, want := Exp(x), math.Exp(x)
		if want != 0 && !math.IsInf(want, 0) && math.Abs(got-want) > 4.5e-16*want {
			t.Fatalf("Exp(%v) = %v, math.Exp %v", x, got, want)
		}
		y := math.Abs(x) * math.Pow(10, rng.Float64()*40-20)
		if y == 0 {
			continue
		}
		gl, wl := Log(y), math.Log(y)
		if math.Abs(gl-wl) > 2.3e-16*math.Max(1, math.Abs(wl)) {
			t.Fatalf("Log(%v) = %v, math.Log %v", y, gl, wl)
		}
	}
	for _, c := range []struct{ x, want float64 }{{0, 1}, {1, math.E}, {-1000, 0}, {1000, math.Inf(1)}} {
		if got := Exp(c.x); got != c.want {
			t.Errorf("Exp(%v) = %v, want %v", c.x, got, c.want)
		}
	}
	if Log(1) != 0 || !math.IsInf(Log(0), -1) || !math.IsNaN(Log(-1)) {
		t.Errorf("Log special cases wrong: log(1)=%v log(0)=%v log(-1)=%v", Log(1), Log(0), Log(-1))
	}
	// ln(2^-1074) = -1074·ln 2. (amd64's assembly math.Log gets this wrong:
	// -709.09, as if the input were 2^-1023.)
	if got, want := Log(5e-324), -1074*math.Ln2; math.Abs(got-want) > 1e-12 {
		t.Errorf("Log(min subnormal) = %v, want %v", got, want)
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
		bits = append(bits, float32(Exp(x)), float32(Log(float64(i)+0.5)), float32(CosPi(float64(i)/63)))
	}
	got := floatsSHA256(append(v, bits...))
	const golden = "4eadc56d28c49bb8af506d4da31c48d91d5ffabe978d9f7b3e09abc258aa7209"
	if got != golden {
		t.Errorf("deterministic draws hash %s, golden %s: the PRNG, Gaussian, exp, log or cos changed or differ on this platform", got, golden)
	}
}

func TestLogAtanhMatchesMathLog(t *testing.T) {
	s := NewStream(99)
	// Go's math.Log is assembly on amd64 and wrong for subnormals, which the
	// Gaussian transform never sees; check the smallest one against ln 2^-1074.
	if got, want := LogAtanh(math.SmallestNonzeroFloat64), -1074*math.Ln2; math.Abs(got-want) > 2*ulp(want) {
		t.Fatalf("LogAtanh(2^-1074) = %v, want %v", got, want)
	}
	xs := []float64{1, 2, 0.5, math.Sqrt2, 4.9e-300, 1e300, 1 - 1e-16, 1 + 1e-15}
	for i := 0; i < 100000; i++ {
		xs = append(xs, float64(s.Uint64()>>11)/(1<<53)+1e-300)
	}
	for _, x := range xs {
		got, want := LogAtanh(x), math.Log(x)
		if d := math.Abs(got - want); d > 2*ulp(want) {
			t.Fatalf("LogAtanh(%v) = %v, math.Log = %v (%.3g ulp)", x, got, want, d/ulp(want))
		}
	}
}

func ulp(x float64) float64 {
	x = math.Abs(x)
	return math.Nextafter(x, math.Inf(1)) - x
}

// floatsSHA256 is the hex sha256 of v's little-endian float32 bytes (as
// fpnet.ParamsSHA256, which this leaf package cannot import).
func floatsSHA256(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
