package es

import (
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/seed8b67a5e0/underflow/kernels"
)

// tinyLowRankTrainer is tinyNetTrainer with rank-r perturbations.
func tinyLowRankTrainer(t testing.TB, workers int, recipeName string, rank int) *Trainer {
	t.Helper()
	return tinyLowRankBatchTrainer(t, workers, recipeName, rank, 32)
}

// tinyLowRankBatchTrainer is tinyLowRankTrainer with another minibatch.
func tinyLowRankBatchTrainer(t testing.TB, workers int, recipeName string, rank, batch int) *Trainer {
	t.Helper()
	return tinyNetTrainerWith(t, workers, recipeName, batch, func(c *Config) { c.Pop, c.Rank = 40, rank })
}

// goldenLowRankTinyNetSHA256 is the parameter hash after 6 generations of
// the tiny network with rank-2 perturbations (pop 40: 20 pairs, so several
// groups of pairs per generation), made on linux/amd64 (avx2).
// purego and arm64 (neon, under qemu) must reproduce it with any number of
// workers: `make test` runs this test on each of them.
const goldenLowRankTinyNetSHA256 = "6ca9fbfc13b897c7d100495ed7e874d895d9da360e65a8f692af571aa3380ceb"

func TestLowRankNetTrainerSameBitsEverywhere(t *testing.T) {
	checkSameBits(t, []int{1, 2, 3}, 6, goldenLowRankTinyNetSHA256, func(w int) *Trainer {
		return tinyLowRankTrainer(t, w, "openai2017", 2)
	})
}

// lowRankOracle scores member sign·(pair p) of the begun generation by the
// definition in netlowrank.go, element by element with the scalar
// reference operations (kernels.FMA, Add, Mul): no blocking, no stacking,
// no shared products.
func lowRankOracle(tr *Trainer, p int, sign float32) Score {
	o := tr.Obj.(*NetObjective)
	lr := tr.lowRank
	var pn LowRankNoise
	lr.pairNoise(&pn, tr.Noise.Slice(tr.offsets[p], lr.length))
	pe, ee, e := o.Net.Recipe.ProductEnv, o.Net.Recipe.ElementEnv, o.Net.Recipe.ScaleExp
	views := o.Net.Arch.LayerViews()
	r, batch := lr.rank, o.Batch
	c := sign * lr.sigmaR
	h, fin := o.x, views[0].FanIn
	restOff := 0
	for l, ly := range views {
		w, fout := ly.W(tr.Params), ly.FanOut
		a, b := pn.A[l], pn.B[l]
		bias := make([]float32, fout)
		for j := range bias {
			bias[j] = kernels.Add(kernels.IEEE, ly.B(tr.Params)[j], kernels.Mul(kernels.IEEE, sign*tr.Cfg.Sigma, pn.Rest[restOff+j]))
		}
		restOff += fout
		out := make([]float32, batch*fout)
		for i := 0; i < batch; i++ {
			u := make([]float32, r)
			for k := range u {
				for q := 0; q < fin; q++ {
					u[k] = kernels.FMA(pe, h[i*fin+q], a[q*r+k], u[k])
				}
			}
			for j := 0; j < fout; j++ {
				var y float32
				for q := 0; q < fin; q++ {
					y = kernels.FMA(pe, h[i*fin+q], w[q*fout+j], y)
				}
				for k := 0; k < r; k++ {
					y = kernels.FMA(pe, u[k], kernels.Mul(kernels.IEEE, c, b[k*fout+j]), y)
				}
				switch {
				case l == 0:
					y = kernels.Mul(ee, kernels.Add(ee, y, bias[j]), float32(math.Ldexp(1, -e)))
				case l == len(views)-1:
					sb := kernels.Mul(ee, bias[j], float32(math.Ldexp(1, -e)))
					y = kernels.Mul(ee, kernels.Add(ee, y, sb), float32(math.Ldexp(1, e)))
				default:
					y = kernels.Add(ee, y, kernels.Mul(ee, bias[j], float32(math.Ldexp(1, -e))))
				}
				out[i*fout+j] = y
			}
		}
		h, fin = out, fout
	}
	return o.scoreLogits(h)
}

// Low-rank members against their definition, computed independently, for
// a few pairs and both signs, after some training (so θ is not the
// initialisation), with rank 1 and 3, both flushing recipes, and a
// minibatch that members run in several chunks of rows.
func TestLowRankMembersMatchDefinition(t *testing.T) {
	for _, tc := range []struct {
		recipe      string
		rank, batch int
	}{{"openai2017", 1, 32}, {"openai2017", 3, 32}, {"ftz", 2, 32}, {"openai2017", 2, 2*lowRankChunk + 10}} {
		tr := tinyLowRankBatchTrainer(t, 2, tc.recipe, tc.rank, tc.batch)
		for range 2 {
			tr.Step()
		}
		tr.Begin()
		for _, p := range []int{0, 7, 19} {
			plus, minus := tr.EvaluatePair(1, p)
			for _, m := range []struct {
				got  Score
				sign float32
			}{{plus, 1}, {minus, -1}} {
				want := lowRankOracle(tr, p, m.sign)
				if math.Float64bits(m.got.Fitness) != math.Float64bits(want.Fitness) || m.got.Accuracy != want.Accuracy {
					t.Fatalf("%s rank %d batch %d pair %d sign %v: fitness %v (acc %v), definition %v (acc %v)",
						tc.recipe, tc.rank, tc.batch, p, m.sign, m.got.Fitness, m.got.Accuracy, want.Fitness, want.Accuracy)
				}
			}
		}
	}
}

// Grouping changes no score: pairs evaluated one by one, in groups of any
// size and in the trainer's own grouping give the same bits.
func TestLowRankGroupingChangesNoBit(t *testing.T) {
	tr := tinyLowRankTrainer(t, 1, "openai2017", 2)
	tr.Step()
	tr.Begin()
	pairs := tr.Pairs()
	onePlus, oneMinus := make([]Score, pairs), make([]Score, pairs)
	for p := 0; p < pairs; p++ {
		onePlus[p], oneMinus[p] = tr.EvaluatePair(0, p)
	}
	for _, group := range []int{2, 3, pairs} {
		plus, minus := make([]Score, pairs), make([]Score, pairs)
		for lo := 0; lo < pairs; lo += group {
			hi := min(lo+group, pairs)
			tr.EvaluatePairs(0, lo, hi, plus[lo:hi], minus[lo:hi])
		}
		for p := range plus {
			if plus[p] != onePlus[p] || minus[p] != oneMinus[p] {
				t.Fatalf("groups of %d: pair %d scores %v/%v, one by one %v/%v", group, p, plus[p], minus[p], onePlus[p], oneMinus[p])
			}
		}
	}
	fitness, _ := tr.evaluateAll()
	for p := 0; p < pairs; p++ {
		if fitness[2*p] != onePlus[p].Fitness || fitness[2*p+1] != oneMinus[p].Fitness {
			t.Fatalf("the trainer's grouping: pair %d fitness %v/%v, one by one %v/%v", p, fitness[2*p], fitness[2*p+1], onePlus[p].Fitness, oneMinus[p].Fitness)
		}
	}
}

// A low-rank member with zero noise is the unperturbed network: the shared
// first-layer product is the one Forward computes.
func TestLowRankZeroNoiseIsTheCenter(t *testing.T) {
	tr := tinyLowRankTrainer(t, 1, "openai2017", 3)
	tr.Step()
	tr.Begin()
	var pn LowRankNoise
	zero := make([]float32, tr.lowRank.length)
	tr.lowRank.pairNoise(&pn, zero)
	plus, minus := make([]Score, 1), make([]Score, 1)
	tr.lowRank.evals[0].EvaluatePairs(tr.Params, []LowRankNoise{pn}, tr.Cfg.Sigma, tr.lowRank.sigmaR, plus, minus)
	center := tr.EvaluateCenter(0)
	if plus[0] != center || minus[0] != center {
		t.Fatalf("zero noise scores %v and %v, the center %v", plus[0], minus[0], center)
	}
}

// The update's Σ_p w_p E_p against its definition: for each weight the
// chain over (p, t) of A_p[i][t]·fl(fl(w_p/√r)·B_p[t][j]) in IEEE, and the
// biases' Σ_p w_p ε_p in pair order.
func TestLowRankEstimateMatchesDefinition(t *testing.T) {
	tr := tinyLowRankTrainer(t, 2, "openai2017", 3)
	tr.Step()
	tr.Begin()
	tr.weigh(tr.evaluateAll())
	tr.lowRankEstimate()
	lr, r := tr.lowRank, tr.lowRank.rank
	noises := make([]LowRankNoise, tr.Pairs())
	for p := range noises {
		lr.pairNoise(&noises[p], tr.Noise.Slice(tr.offsets[p], lr.length))
	}
	restOff := 0
	for l, ly := range tr.Obj.(*NetObjective).Net.Arch.LayerViews() {
		g := lr.grad[ly.WOff : ly.WOff+ly.FanIn*ly.FanOut]
		for i := 0; i < ly.FanIn; i++ {
			for j := 0; j < ly.FanOut; j++ {
				var want float32
				for p, pn := range noises {
					w := kernels.Mul(kernels.IEEE, tr.weights[p], lr.rootR)
					for k := 0; k < r; k++ {
						want = kernels.FMA(kernels.IEEE, pn.A[l][i*r+k], kernels.Mul(kernels.IEEE, w, pn.B[l][k*ly.FanOut+j]), want)
					}
				}
				if math.Float32bits(g[i*ly.FanOut+j]) != math.Float32bits(want) {
					t.Fatalf("layer %d weight (%d,%d): %#08x, definition %#08x", l, i, j, math.Float32bits(g[i*ly.FanOut+j]), math.Float32bits(want))
				}
			}
		}
		for j := 0; j < ly.FanOut; j++ {
			var want float32
			for p, pn := range noises {
				want = kernels.Add(kernels.IEEE, want, kernels.Mul(kernels.IEEE, tr.weights[p], pn.Rest[restOff+j]))
			}
			if got := lr.grad[ly.BOff+j]; math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("layer %d bias %d: %#08x, definition %#08x", l, j, math.Float32bits(got), math.Float32bits(want))
			}
		}
		restOff += ly.FanOut
	}
}

// Low-rank ES must learn: the tiny network's minibatch loss falls.
func TestLowRankESLearns(t *testing.T) {
	tr := tinyLowRankTrainer(t, 2, "openai2017", 1)
	tr.Obj.Begin(0)
	start := tr.evals[0].Evaluate(tr.Params).Fitness
	var st Stats
	for range 60 {
		st = tr.Step()
	}
	tr.Obj.Begin(0)
	end := tr.evals[0].Evaluate(tr.Params).Fitness
	t.Logf("generation-0 minibatch fitness %.4f → %.4f after %d generations (last center %.4f)", start, end, st.Gen, st.Center.Fitness)
	if !(end > start+0.2) {
		t.Fatalf("fitness %v at start, %v after 60 generations: low-rank ES did not learn", start, end)
	}
}

func TestLowRankConfig(t *testing.T) {
	c := DefaultConfig()
	c.Rank = -1
	if c.Validate(100) == nil {
		t.Error("negative rank accepted")
	}
	c.Rank, c.Guide = 2, 0.1
	if c.Validate(100) == nil {
		t.Error("guided ES with low-rank perturbations accepted")
	}
	cfg := toyConfig(1)
	cfg.Rank = 2
	noise, err := NewNoiseTable(cfg.NoiseSeed, cfg.NoiseSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewTrainer(cfg, newQuadratic(100), noise, make([]float32, 100)); err == nil {
		t.Error("rank 2 accepted for an objective without weight matrices")
	}
}

// A checkpoint of a low-rank run resumes exactly, and only under the same
// rank.
func TestLowRankCheckpoint(t *testing.T) {
	full := tinyLowRankTrainer(t, 2, "openai2017", 2)
	for range 4 {
		full.Step()
	}
	first := tinyLowRankTrainer(t, 1, "openai2017", 2)
	for range 2 {
		first.Step()
	}
	path := filepath.Join(t.TempDir(), "ckpt.bin")
	if err := first.Checkpoint(nil).Save(path); err != nil {
		t.Fatal(err)
	}
	ck, err := LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	resumed := tinyLowRankTrainer(t, 2, "openai2017", 2)
	if err := resumed.Restore(ck, nil); err != nil {
		t.Fatal(err)
	}
	for resumed.Gen < 4 {
		resumed.Step()
	}
	if a, b := paramsHash(full.Params), paramsHash(resumed.Params); a != b {
		t.Fatalf("resumed low-rank run ends with %s, uninterrupted %s", b, a)
	}
	for _, rank := range []int{0, 1} {
		if err := tinyLowRankTrainer(t, 1, "openai2017", rank).Restore(ck, nil); !errors.Is(err, ErrMismatch) {
			t.Errorf("rank-2 checkpoint restored under rank %d: %v, want ErrMismatch", rank, err)
		}
	}
}
