package es

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/seed8b67a5e0/underflow/fpnet/detmath"
	"github.com/seed8b67a5e0/underflow/kernels"
)

// quadratic is a toy objective: maximise −Σ c_g·(θ_i − target_i)² over a
// per-generation subset of coordinates (its "minibatch"), all in float64
// with unfused products so it has the same bits everywhere.
type quadratic struct {
	target []float32
	seed   uint64
	subset []int
}

func newQuadratic(dim int) *quadratic {
	q := &quadratic{target: make([]float32, dim), seed: 7}
	fillGaussian(q.target, 12345)
	return q
}

func (q *quadratic) Dim() int { return len(q.target) }

func (q *quadratic) Begin(gen int64) {
	s := detmath.NewStream(detmath.StreamKey(q.seed, tagBatch, uint64(gen)))
	q.subset = q.subset[:0]
	for i := 0; i < len(q.target)/2; i++ {
		q.subset = append(q.subset, s.Intn(len(q.target)))
	}
}

func (q *quadratic) NewEvaluator() Evaluator { return quadEval{q} }

type quadEval struct{ q *quadratic }

func (e quadEval) Evaluate(p []float32) Score {
	var sum float64
	for _, i := range e.q.subset {
		d := float64(p[i]) - float64(e.q.target[i])
		sum = float64(d*d) + sum
	}
	return Score{Fitness: -sum, Accuracy: math.NaN()}
}

func paramsHash(p []float32) string {
	h := sha256.New()
	binary.Write(h, binary.LittleEndian, p)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// checkSameBits runs gens generations of the trainer that newTrainer builds
// for each worker count, checks that every count ends with the same
// parameters, and that they hash to golden.
func checkSameBits(t *testing.T, workers []int, gens int, golden string, newTrainer func(workers int) *Trainer) {
	t.Helper()
	var first string
	for _, w := range workers {
		tr := newTrainer(w)
		for i := 0; i < gens; i++ {
			tr.Step()
		}
		h := paramsHash(tr.Params)
		if first == "" {
			first = h
		} else if h != first {
			t.Fatalf("%d workers give %s, %d worker(s) %s", w, h, workers[0], first)
		}
	}
	t.Logf("backend %s: params SHA-256 %s", kernels.Backend(), first)
	if first != golden {
		t.Fatalf("backend %s: params SHA-256 %s, golden %s", kernels.Backend(), first, golden)
	}
}

func toyConfig(workers int) Config {
	c := DefaultConfig()
	c.Pop, c.Sigma, c.LR, c.L2 = 16, 0.05, 0.05, 0.001
	c.NoiseSize, c.Workers = 20000, workers
	return c
}

func newToyTrainer(t testing.TB, cfg Config, dim int) *Trainer {
	t.Helper()
	noise, err := NewNoiseTable(cfg.NoiseSeed, cfg.NoiseSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(cfg, newQuadratic(dim), noise, make([]float32, dim))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestNoiseTableIsStandardNormal(t *testing.T) {
	nt, err := NewNoiseTable(3, 1<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	var sum, sq, within1 float64
	for _, v := range nt.Values {
		sum += float64(v)
		sq += float64(v) * float64(v)
		if math.Abs(float64(v)) < 1 {
			within1++
		}
	}
	n := float64(len(nt.Values))
	mean, variance := sum/n, sq/n-(sum/n)*(sum/n)
	if math.Abs(mean) > 0.005 || math.Abs(variance-1) > 0.005 || math.Abs(within1/n-0.682689) > 0.002 {
		t.Fatalf("mean %v, variance %v, P(|x|<1) %v: not a standard normal", mean, variance, within1/n)
	}
}

// goldenNoiseSHA256 is the SHA-256 of NewNoiseTable(42, 200003) made on
// linux/amd64; every platform and thread count must reproduce it.
const goldenNoiseSHA256 = "b6b33f7122a76b6f77a4fde9087e596927f748c6b9b9844ede76401053b0f668"

func TestNoiseTableSameBitsEverywhere(t *testing.T) {
	var first string
	for _, threads := range []int{1, 2, 5} {
		nt, err := NewNoiseTable(42, 200003, threads)
		if err != nil {
			t.Fatal(err)
		}
		h := nt.SHA256()
		if first == "" {
			first = h
		} else if h != first {
			t.Fatalf("%d threads give table %s, 1 thread %s", threads, h, first)
		}
	}
	if first != goldenNoiseSHA256 {
		t.Fatalf("noise table SHA-256 %s, golden %s", first, goldenNoiseSHA256)
	}
}

func TestCenteredRanks(t *testing.T) {
	got := CenteredRanks([]float64{3, 1, 2, math.NaN(), 2})
	// Sorted: NaN(0) 1(1) 2,2(2.5) 3(4); n−1 = 4.
	want := []float64{0.5, -0.25, 0.125, -0.5, 0.125}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("CenteredRanks = %v, want %v", got, want)
		}
	}
	if r := CenteredRanks([]float64{5}); r[0] != 0 {
		t.Fatalf("one value gets %v, want 0", r[0])
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.Pop = 3 },
		func(c *Config) { c.Pop = 0 },
		func(c *Config) { c.Sigma = 0 },
		func(c *Config) { c.LR = float32(math.NaN()) },
		func(c *Config) { c.L2 = -1 },
		func(c *Config) { c.Beta2 = 1 },
		func(c *Config) { c.NoiseSize = 10 },
		func(c *Config) { c.Guide = 1 },
		func(c *Config) { c.Guide = -0.1 },
	}
	for i, f := range bad {
		c := DefaultConfig()
		f(&c)
		if err := c.Validate(100); err == nil {
			t.Errorf("case %d: %+v accepted", i, c)
		}
	}
}

func TestTrainerImprovesToyObjective(t *testing.T) {
	tr := newToyTrainer(t, toyConfig(2), 300)
	tr.Obj.Begin(0)
	start := tr.evals[0].Evaluate(tr.Params).Fitness
	for i := 0; i < 150; i++ {
		tr.Step()
	}
	tr.Obj.Begin(0)
	end := tr.evals[0].Evaluate(tr.Params).Fitness
	if !(end > 0.4*start) { // fitness is negative: the loss must drop by 2.5×
		t.Fatalf("fitness %v after 150 generations, %v at start", end, start)
	}
}

// goldenToyParamsSHA256 is the parameter hash after 20 toy generations, made
// on linux/amd64; every worker count and platform must reproduce it.
const goldenToyParamsSHA256 = "68b242cad872065efcfa69c9dde223cc3dfb8c7b641705d5f661b3a266176672"

func TestTrainerSameBitsForAnyWorkerCount(t *testing.T) {
	checkSameBits(t, []int{1, 2, 3, 8}, 20, goldenToyParamsSHA256, func(w int) *Trainer {
		return newToyTrainer(t, toyConfig(w), 9000) // 3 gradient chunks, the last partial
	})
}

func TestCheckpointResumeIsExact(t *testing.T) {
	const dim, total, cut = 9000, 12, 5
	full := newToyTrainer(t, toyConfig(2), dim)
	for i := 0; i < total; i++ {
		full.Step()
	}

	path := filepath.Join(t.TempDir(), "ckpt.bin")
	meta := map[string]string{"objective": "quadratic"}
	first := newToyTrainer(t, toyConfig(2), dim)
	for i := 0; i < cut; i++ {
		first.Step()
	}
	if err := first.Checkpoint(meta).Save(path); err != nil {
		t.Fatal(err)
	}
	first.Step() // work after the checkpoint is lost, as in a crash

	ck, err := LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	resumed := newToyTrainer(t, toyConfig(3), dim) // worker count may change
	if err := resumed.Restore(ck, meta); err != nil {
		t.Fatal(err)
	}
	for resumed.Gen < total {
		resumed.Step()
	}
	if a, b := paramsHash(full.Params), paramsHash(resumed.Params); a != b {
		t.Fatalf("resumed run ends with %s, uninterrupted %s", b, a)
	}

	other := toyConfig(2)
	other.Sigma *= 2
	if err := newToyTrainer(t, other, dim).Restore(ck, meta); !errors.Is(err, ErrMismatch) {
		t.Fatalf("restore under another sigma: %v, want ErrMismatch", err)
	}
	if err := newToyTrainer(t, toyConfig(2), dim).Restore(ck, map[string]string{"objective": "other"}); !errors.Is(err, ErrMismatch) {
		t.Fatalf("restore with other metadata: %v, want ErrMismatch", err)
	}
}

func TestCheckpointRefusesDamage(t *testing.T) {
	tr := newToyTrainer(t, toyConfig(1), 100)
	tr.Step()
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt.bin")
	if err := tr.Checkpoint(nil).Save(path); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 1
	cases := map[string][]byte{
		"truncated": good[:len(good)-7],
		"flipped":   flipped,
		"empty":     {},
		"foreign":   []byte("PK\x03\x04 not a checkpoint at all, just some bytes to be long enough"),
	}
	for name, data := range cases {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		if _, err := LoadCheckpoint(p); err == nil {
			t.Errorf("%s checkpoint accepted", name)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1+len(cases) {
		t.Errorf("atomic save left extra files: %v", entries)
	}
}

func TestLRSchedule(t *testing.T) {
	c := DefaultConfig()
	c.LR, c.LRFinal, c.DecayGens = 0.004, 0.001, 300
	for _, tc := range []struct {
		gen  int64
		want float32
	}{{0, 0.004}, {150, 0.0025}, {300, 0.001}, {1000, 0.001}} {
		// The endpoints exactly; in between within an ulp (float32 rates).
		if got := c.LRAt(tc.gen); got != tc.want && (tc.gen != 150 || math.Abs(float64(got-tc.want)) > 1e-9) {
			t.Errorf("LRAt(%d) = %v, want %v", tc.gen, got, tc.want)
		}
	}
	c.DecayGens = 0
	if got := c.LRAt(500); got != 0.004 {
		t.Errorf("constant schedule gives %v at generation 500", got)
	}
	c.DecayGens, c.LRFinal = 10, -1
	if c.Validate(10) == nil {
		t.Error("negative final learning rate accepted")
	}
}

// guidedQuadratic is the toy objective with its exact loss gradient as the
// surrogate.
type guidedQuadratic struct{ *quadratic }

func (q guidedQuadratic) Surrogate(grad, params []float32) {
	clear(grad)
	for _, i := range q.subset {
		grad[i] += 2 * (params[i] - q.target[i])
	}
}

func newGuidedToyTrainer(t testing.TB, cfg Config, dim int) *Trainer {
	t.Helper()
	noise, err := NewNoiseTable(cfg.NoiseSeed, cfg.NoiseSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(cfg, guidedQuadratic{newQuadratic(dim)}, noise, make([]float32, dim))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// With a good surrogate, guided ES must beat plain ES by far at the same
// population.
func TestGuidedESFollowsTheSurrogate(t *testing.T) {
	const dim, gens = 9000, 40
	loss := func(guide float32) float64 {
		cfg := toyConfig(2)
		cfg.Pop, cfg.Guide = 8, guide
		tr := newGuidedToyTrainer(t, cfg, dim)
		for i := 0; i < gens; i++ {
			tr.Step()
		}
		tr.Obj.Begin(0)
		return -tr.evals[0].Evaluate(tr.Params).Fitness
	}
	start := func() float64 {
		tr := newToyTrainer(t, toyConfig(1), dim)
		tr.Obj.Begin(0)
		return -tr.evals[0].Evaluate(tr.Params).Fitness
	}()
	plain, guided := loss(0), loss(0.9)
	t.Logf("loss %.1f at start, after %d generations: plain %.1f, guided %.1f", start, gens, plain, guided)
	if !(guided < 0.2*start && guided < 0.2*plain) {
		t.Errorf("loss %v at start, after %d generations: guided %v, plain %v: the surrogate did not help", start, gens, guided, plain)
	}
}

// goldenGuidedToySHA256 is the guided toy run's parameter hash (linux/amd64).
const goldenGuidedToySHA256 = "02863fe1cdb839668cadc9d18846af47c899a164b65ab0c1ad1bed3934251aa0"

func TestGuidedTrainerSameBitsForAnyWorkerCount(t *testing.T) {
	checkSameBits(t, []int{1, 2, 3}, 20, goldenGuidedToySHA256, func(w int) *Trainer {
		cfg := toyConfig(w)
		cfg.Guide = 0.5
		return newGuidedToyTrainer(t, cfg, 9000)
	})
}

func TestGuideNeedsAGuider(t *testing.T) {
	cfg := toyConfig(1)
	cfg.Guide = 0.5
	noise, err := NewNoiseTable(cfg.NoiseSeed, cfg.NoiseSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewTrainer(cfg, newQuadratic(100), noise, make([]float32, 100)); err == nil {
		t.Fatal("guide share accepted with an objective that has no surrogate gradient")
	}
}

// Estimate changes no state, and on the toy objective its direction agrees
// with the exact gradient, more closely with a larger population.
func TestEstimateIsADiagnostic(t *testing.T) {
	const dim = 3000
	cosAt := func(pop int) float64 {
		cfg := toyConfig(2)
		cfg.Pop = pop
		tr := newGuidedToyTrainer(t, cfg, dim) // plain ES; the Guider only supplies the exact gradient
		before := paramsHash(tr.Params)
		est := make([]float32, dim)
		tr.Estimate(est)
		if tr.Gen != 0 || tr.Opt.T != 0 || paramsHash(tr.Params) != before {
			t.Fatal("Estimate changed the trainer's state")
		}
		exact := make([]float32, dim)
		tr.Obj.(Guider).Surrogate(exact, tr.Params)
		var dot, ne, nx float64
		for i := range est {
			dot += float64(est[i]) * float64(exact[i])
			ne += float64(est[i]) * float64(est[i])
			nx += float64(exact[i]) * float64(exact[i])
		}
		return dot / math.Sqrt(ne*nx)
	}
	small, large := cosAt(16), cosAt(1000)
	t.Logf("cosine with the exact gradient: pop 16 %.3f, pop 1000 %.3f", small, large)
	if !(large > 0.3 && large > small) {
		t.Fatalf("cosine with the exact gradient: pop 16 %.3f, pop 1000 %.3f", small, large)
	}

	// A Step after an Estimate is the Step without it.
	a, b := newToyTrainer(t, toyConfig(1), dim), newToyTrainer(t, toyConfig(1), dim)
	a.Estimate(make([]float32, dim))
	a.Step()
	b.Step()
	if paramsHash(a.Params) != paramsHash(b.Params) {
		t.Fatal("an Estimate changed the next Step")
	}
}
