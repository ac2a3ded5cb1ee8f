package es

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/seed8b67a5e0/underflow/fpnet/optim"
	"github.com/seed8b67a5e0/underflow/kernels"
)

// Config holds the hyper-parameters. Every field except Workers is part of
// the trajectory: a checkpoint only resumes under the same values.
type Config struct {
	Pop       int     // members per generation; even: Pop/2 antithetic pairs
	Sigma     float32 // perturbation scale
	LR        float32 // Adam step size (at generation 0)
	LRFinal   float32 // with DecayGens > 0: the step size reached at generation DecayGens
	DecayGens int64   // 0: constant LR; else LR falls linearly to LRFinal over this many generations
	L2        float32 // L2 decay coefficient, added to the gradient as L2·θ
	// Guide is the share of each perturbation's variance put along the
	// objective's surrogate gradient (guided ES, Maheswaranathan et al.
	// 2019; the objective must be a Guider). 0 is plain ES. The fitness is
	// still the exact function; the surrogate only shapes where ES looks.
	Guide float32
	// Rank r > 0 perturbs the objective's weight matrices by rank-r
	// products A·B/√r (low-rank ES, lowrank.go; the objective must be a
	// LowRanker); 0 is full-rank noise on every parameter.
	Rank      int
	Beta1     float32 // Adam β1
	Beta2     float32 // Adam β2
	Eps       float32 // Adam ε
	Seed      uint64  // offsets into the noise table and the objective's minibatches
	NoiseSeed uint64  // the noise table's seed
	NoiseSize int     // noise table entries (float32 values)
	Workers   int     // evaluation goroutines; 0 = GOMAXPROCS. Does not change any bit.
}

// DefaultConfig returns the defaults chosen by measurement (see README).
func DefaultConfig() Config {
	return Config{
		Pop: 200, Sigma: 0.01, LR: 0.003, L2: 0.005,
		Beta1: 0.9, Beta2: 0.999, Eps: 1e-8,
		Seed: 1, NoiseSeed: 1, NoiseSize: 1 << 25,
	}
}

// Validate checks the configuration against a parameter dimension.
func (c Config) Validate(dim int) error {
	switch {
	case c.Pop < 2 || c.Pop%2 != 0:
		return fmt.Errorf("es: population %d must be even and at least 2 (antithetic pairs)", c.Pop)
	case !(c.Sigma > 0) || math.IsInf(float64(c.Sigma), 0):
		return fmt.Errorf("es: sigma %v must be positive and finite", c.Sigma)
	case !(c.LR > 0) || math.IsInf(float64(c.LR), 0):
		return fmt.Errorf("es: learning rate %v must be positive and finite", c.LR)
	case c.DecayGens < 0 || (c.DecayGens > 0 && (!(c.LRFinal >= 0) || math.IsInf(float64(c.LRFinal), 0))):
		return fmt.Errorf("es: learning-rate decay over %d generations to %v: need generations >= 0 and a final rate >= 0", c.DecayGens, c.LRFinal)
	case !(c.Guide >= 0 && c.Guide < 1):
		return fmt.Errorf("es: guide share %v must lie in [0, 1): the rest of the variance stays isotropic", c.Guide)
	case c.Rank < 0:
		return fmt.Errorf("es: rank %d must be 0 (full-rank noise) or positive (low-rank perturbations)", c.Rank)
	case c.Rank > 0 && c.Guide > 0:
		return fmt.Errorf("es: guided ES (guide share %v) perturbs along a full-rank direction; it does not combine with rank-%d perturbations", c.Guide, c.Rank)
	case !(c.L2 >= 0) || math.IsInf(float64(c.L2), 0):
		return fmt.Errorf("es: L2 coefficient %v must be zero or positive and finite", c.L2)
	case !(c.Beta1 >= 0 && c.Beta1 < 1) || !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("es: Adam betas (%v, %v) must lie in [0, 1)", c.Beta1, c.Beta2)
	case !(c.Eps > 0):
		return fmt.Errorf("es: Adam epsilon %v must be positive", c.Eps)
	case c.NoiseSize < dim:
		return fmt.Errorf("es: noise table size %d is smaller than the %d parameters; a perturbation is one slice of it", c.NoiseSize, dim)
	case c.Workers < 0:
		return fmt.Errorf("es: workers %d must not be negative", c.Workers)
	}
	return nil
}

// LRAt is the Adam step size of generation gen: LR, or with DecayGens > 0
// the linear fall to LRFinal, then LRFinal. Plain float64 arithmetic with
// the product rounded before the add, so it is the same everywhere and a
// resumed run gets the same schedule.
func (c Config) LRAt(gen int64) float32 {
	if c.DecayGens <= 0 {
		return c.LR
	}
	f := float64(min(gen, c.DecayGens)) / float64(c.DecayGens)
	return float32(float64(c.LR) + float64(f*(float64(c.LRFinal)-float64(c.LR))))
}

// Score is what an evaluator says about one parameter vector.
type Score struct {
	Fitness  float64 // higher is better; NaN ranks as the worst
	Accuracy float64 // fraction correct on the shared data, or NaN when it has no meaning
}

// Objective is the function ES maximises.
type Objective interface {
	// Dim is the number of parameters.
	Dim() int
	// Begin prepares generation gen's shared data, for example its
	// minibatch. It is called once per generation, before any evaluation
	// of that generation, from one goroutine.
	Begin(gen int64)
	// NewEvaluator returns an evaluator for the exclusive use of one
	// worker goroutine (its own workspace).
	NewEvaluator() Evaluator
}

// Projector is an optional Objective method: after every update the
// trainer calls Project, which may move the parameters onto a constraint
// set (for example, fixed layer norms). It must be deterministic.
type Projector interface {
	Project(params []float32)
}

// Guider is an Objective that also has a surrogate for the gradient of its
// loss (minus the fitness), for guided ES (Config.Guide > 0).
type Guider interface {
	// Surrogate writes the surrogate loss gradient at params on the current
	// generation's data to grad. It is called once per generation, after
	// Begin, from one goroutine, and must be a pure function of params and
	// that data.
	Surrogate(grad, params []float32)
}

// Evaluator scores parameter vectors on the current generation's data. The
// score must be a pure function of the parameters and that data.
type Evaluator interface {
	Evaluate(params []float32) Score
}

// PerturbedEvaluator is an Evaluator that also scores an antithetic pair,
// θ + s·ε and θ + (−s)·ε, each element the product rounded to float32, then
// the sum (kernels.AddScaled in IEEE), without the trainer materialising
// either vector: the network applies the perturbation while it packs its
// weights, for both members in one pass over the noise. The scores must be
// the ones Evaluate gives the materialised vectors.
type PerturbedEvaluator interface {
	Evaluator
	EvaluatePerturbedPair(theta, eps []float32, s float32) (plus, minus Score)
}

// Stats summarises one generation.
type Stats struct {
	Gen         int64   // generations completed, this one included
	Center      Score   // the unperturbed parameters on this generation's data
	MeanFitness float64 // mean over the population
	BestFitness float64
	Evaluations int // forward evaluations done, the center included
}

// Trainer runs ES generations. Params, Opt and Gen are its whole state.
type Trainer struct {
	Cfg    Config
	Obj    Objective
	Noise  *NoiseTable
	Params []float32
	Opt    *optim.Adam
	Gen    int64 // generations completed

	evals   []Evaluator
	scratch [][]float32   // one perturbed parameter vector per worker
	accs    [][]float32   // one gradient chunk per worker
	epsBuf  [][][]float32 // per worker: the weighted pairs' noise over a chunk
	wtsBuf  [][]float32   // and their weights
	fitness []float64
	weights []float32
	offsets []int
	guide   *guideState // nil in plain ES
	lowRank *lowRank    // nil with full-rank noise

	begun    int64   // the generation Begin prepared; -1 before the first
	isoSigma float32 // the begun generation's isotropic noise scale
}

// gradChunk is the number of parameters one worker updates at a time; its
// accumulator stays in L1 while the pairs' noise streams past.
const gradChunk = 4096

// NewTrainer returns a trainer at generation 0 starting from a copy of init.
func NewTrainer(cfg Config, obj Objective, noise *NoiseTable, init []float32) (*Trainer, error) {
	dim := obj.Dim()
	if len(init) != dim {
		return nil, fmt.Errorf("es: initial parameters have %d values, the objective wants %d", len(init), dim)
	}
	if noise != nil && cfg.NoiseSize == 0 {
		cfg.NoiseSize = len(noise.Values)
	}
	if err := cfg.Validate(dim); err != nil {
		return nil, err
	}
	if noise == nil || noise.Seed != cfg.NoiseSeed || len(noise.Values) != cfg.NoiseSize {
		return nil, fmt.Errorf("es: the noise table does not match the configuration (seed %d, size %d)", cfg.NoiseSeed, cfg.NoiseSize)
	}
	for i, v := range init {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("es: initial parameter %d is %v", i, v)
		}
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	var guide *guideState
	if cfg.Guide > 0 {
		g, ok := obj.(Guider)
		if !ok {
			return nil, fmt.Errorf("es: guide share %v needs an objective with a surrogate gradient", cfg.Guide)
		}
		guide = newGuideState(g, cfg, dim)
	}
	var lr *lowRank
	if cfg.Rank > 0 {
		lro, ok := obj.(LowRanker)
		if !ok {
			return nil, fmt.Errorf("es: rank %d needs an objective with weight matrices to perturb (a LowRanker)", cfg.Rank)
		}
		var err error
		if lr, err = newLowRank(lro, cfg, dim); err != nil {
			return nil, err
		}
	}
	t := &Trainer{
		Cfg: cfg, Obj: obj, Noise: noise,
		Params:  append([]float32(nil), init...),
		Opt:     optim.NewAdam(dim, cfg.LR, cfg.Beta1, cfg.Beta2, cfg.Eps),
		fitness: make([]float64, cfg.Pop),
		weights: make([]float32, cfg.Pop/2),
		offsets: make([]int, cfg.Pop/2),
		guide:   guide,
		lowRank: lr,
		begun:   -1,
	}
	for w := 0; w < cfg.Workers; w++ {
		ev := obj.NewEvaluator()
		t.evals = append(t.evals, ev)
		// A member is materialised only when the evaluator cannot take θ
		// and its noise apart, or guided ES adds its second direction.
		var scratch []float32
		if _, ok := ev.(PerturbedEvaluator); (!ok || guide != nil) && lr == nil {
			scratch = make([]float32, dim)
		}
		t.scratch = append(t.scratch, scratch)
		t.accs = append(t.accs, make([]float32, gradChunk))
		t.epsBuf = append(t.epsBuf, make([][]float32, 0, cfg.Pop/2))
		t.wtsBuf = append(t.wtsBuf, make([]float32, 0, cfg.Pop/2))
		if lr != nil {
			lr.evals = append(lr.evals, obj.(LowRanker).NewLowRankEvaluator(cfg.Rank))
			lr.noise = append(lr.noise, nil)
		}
	}
	return t, nil
}

// parallel runs job(w, i) for i in [0, n) on the trainer's workers; w is the
// worker's index, which owns evals[w], scratch[w] and accs[w]. Which worker
// runs which job varies; results must land in slots fixed by i.
func (t *Trainer) parallel(n int, job func(w, i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(t.Cfg.Workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				job(w, i)
			}
		}()
	}
	wg.Wait()
}

// Step runs one generation: evaluate the population θ ± σε_p and θ itself,
// shape the fitness into centered ranks, estimate the gradient and take one
// Adam step with L2 decay.
func (t *Trainer) Step() Stats {
	t.Begin()
	fitness, center := t.evaluateAll()
	return t.Update(fitness, center)
}

// Begin prepares generation Gen for evaluation: the objective's shared data,
// the pairs' offsets into the noise table and, in guided ES, the surrogate
// direction. Step calls it; a trainer whose members are evaluated elsewhere
// (a distributed worker) calls it once per generation, then EvaluatePair
// and EvaluateCenter, then Update. A second call for the same generation
// does nothing.
func (t *Trainer) Begin() {
	if t.begun == t.Gen {
		return
	}
	cfg, dim := t.Cfg, len(t.Params)
	t.Obj.Begin(t.Gen)
	length := dim // noise values per pair
	if t.lowRank != nil {
		length = t.lowRank.length
		t.Obj.(LowRanker).BeginLowRank(t.Params, cfg.Workers)
	}
	for p := range t.offsets {
		t.offsets[p] = t.Noise.Offset(cfg.Seed, t.Gen, p, length)
	}
	t.isoSigma = cfg.Sigma
	if t.guide != nil {
		t.guide.begin(t.Params, cfg.Seed, t.Gen)
		t.isoSigma = t.guide.isoSigma
	}
	t.begun = t.Gen
}

// Slots is the number of evaluation slots: EvaluatePair and EvaluateCenter
// may run concurrently on distinct slots in [0, Slots()).
func (t *Trainer) Slots() int { return len(t.evals) }

// Pairs is the number of antithetic pairs per generation, Pop/2.
func (t *Trainer) Pairs() int { return len(t.offsets) }

// EvaluatePair scores pair p's members θ + σε_p and θ − σε_p of the begun
// generation on slot w. Both members run on one slot, one after the other,
// so the second finds the noise slice still in cache.
func (t *Trainer) EvaluatePair(w, p int) (plus, minus Score) {
	t.mustBegun()
	if t.lowRank != nil {
		var pl, mi [1]Score
		t.EvaluatePairs(w, p, p+1, pl[:], mi[:])
		return pl[0], mi[0]
	}
	dim := len(t.Params)
	ev, s := t.evals[w], t.scratch[w]
	eps := t.Noise.Slice(t.offsets[p], dim)
	if pe, ok := ev.(PerturbedEvaluator); ok && t.guide == nil {
		return pe.EvaluatePerturbedPair(t.Params, eps, t.isoSigma)
	}
	kernels.AddScaled(kernels.IEEE, s, t.Params, eps, t.isoSigma)
	t.guide.perturb(s, p, 1)
	plus = ev.Evaluate(s)
	kernels.AddScaled(kernels.IEEE, s, t.Params, eps, -t.isoSigma)
	t.guide.perturb(s, p, -1)
	minus = ev.Evaluate(s)
	return plus, minus
}

// EvaluatePairs scores pairs lo..hi−1 of the begun generation on slot w:
// plus[i] and minus[i] are pair lo+i's members, the same scores
// EvaluatePair gives one by one. Low-rank pairs evaluated together share
// work (the first layer's x·A of several pairs is one product); full-rank
// pairs run one after the other.
func (t *Trainer) EvaluatePairs(w, lo, hi int, plus, minus []Score) {
	t.mustBegun()
	if lo < 0 || hi > t.Pairs() || lo > hi || len(plus) < hi-lo || len(minus) < hi-lo {
		panic(fmt.Sprintf("es: EvaluatePairs(%d, %d) of %d pairs into %d and %d scores", lo, hi, t.Pairs(), len(plus), len(minus)))
	}
	lr := t.lowRank
	if lr == nil {
		for p := lo; p < hi; p++ {
			plus[p-lo], minus[p-lo] = t.EvaluatePair(w, p)
		}
		return
	}
	noise := lr.noise[w][:0]
	for p := lo; p < hi; p++ {
		noise = append(noise, LowRankNoise{})
		lr.pairNoise(&noise[p-lo], t.Noise.Slice(t.offsets[p], lr.length))
	}
	lr.noise[w] = noise
	lr.evals[w].EvaluatePairs(t.Params, noise, t.Cfg.Sigma, lr.sigmaR, plus[:hi-lo], minus[:hi-lo])
}

// EvaluateCenter scores the unperturbed θ on the begun generation's data,
// on slot w.
func (t *Trainer) EvaluateCenter(w int) Score {
	t.mustBegun()
	return t.evals[w].Evaluate(t.Params)
}

func (t *Trainer) mustBegun() {
	if t.begun != t.Gen {
		panic(fmt.Sprintf("es: generation %d evaluated before Begin", t.Gen))
	}
}

// evaluateAll scores the begun generation's population and θ on every slot:
// member 2p is θ + σε_p, member 2p+1 is θ − σε_p.
func (t *Trainer) evaluateAll() (fitness []float64, center Score) {
	pairs := t.Pairs()
	fitness = t.fitness
	if lr := t.lowRank; lr != nil {
		// Job j < groups is a group of pairs evaluated together; the last
		// job is θ.
		// Groups of PairsPerCall pairs share work, but no fewer than about
		// eight groups per worker, so that the workers finish together.
		size := max(1, min(lr.evals[0].PairsPerCall(), pairs/(8*len(lr.evals))))
		groups := (pairs + size - 1) / size
		plus, minus := make([]Score, pairs), make([]Score, pairs)
		t.parallel(groups+1, func(w, j int) {
			if j == groups {
				center = t.EvaluateCenter(w)
				return
			}
			lo, hi := j*size, min((j+1)*size, pairs)
			t.EvaluatePairs(w, lo, hi, plus[lo:hi], minus[lo:hi])
		})
		for p := range plus {
			fitness[2*p], fitness[2*p+1] = plus[p].Fitness, minus[p].Fitness
		}
		return fitness, center
	}
	// Job p < pairs is pair p; job pairs is θ.
	t.parallel(pairs+1, func(w, p int) {
		if p == pairs {
			center = t.EvaluateCenter(w)
			return
		}
		plus, minus := t.EvaluatePair(w, p)
		fitness[2*p], fitness[2*p+1] = plus.Fitness, minus.Fitness
	})
	return fitness, center
}

// Update ends the begun generation: it shapes the population's fitness
// (member 2p is θ + σε_p, 2p+1 is θ − σε_p, whoever evaluated them) into
// centered ranks, estimates the gradient, takes one Adam step with L2
// decay, and advances Gen. center is θ's score, reported in the Stats.
// The new parameters are a pure function of the state and fitness, so every
// trainer given the same fitness takes the same step, bit for bit.
func (t *Trainer) Update(fitness []float64, center Score) Stats {
	cfg, dim := t.Cfg, len(t.Params)
	t.mustBegun()
	if len(fitness) != cfg.Pop {
		panic(fmt.Sprintf("es: Update with %d fitness values, population %d", len(fitness), cfg.Pop))
	}
	st := t.weigh(fitness, center)

	// Update, chunk by chunk: each parameter's gradient sums the pairs in
	// index order, whoever computes the chunk, then Adam steps the chunk.
	t.Opt.LR = cfg.LRAt(t.Gen)
	a := t.Opt.StepSize(t.Opt.T + 1)
	if t.lowRank != nil {
		t.lowRankEstimate()
	}
	invPop := 1 / float32(cfg.Pop)
	t.parallel((dim+gradChunk-1)/gradChunk, func(w, c int) {
		lo := c * gradChunk
		hi := min(lo+gradChunk, dim)
		acc := t.accs[w][:hi-lo]
		t.weightedNoise(w, acc, lo)
		theta := t.Params[lo:hi]
		for i, g := range acc {
			// The loss gradient: −(rank-weighted noise)/pop + L2·θ.
			acc[i] = float32(cfg.L2*theta[i]) - float32(g*invPop)
		}
		t.Opt.StepRange(a, t.Params, acc, lo, hi)
	})
	if p, ok := t.Obj.(Projector); ok {
		p.Project(t.Params)
	}
	t.Opt.T++
	t.Gen++
	st.Gen = t.Gen
	return st
}

// Estimate writes to dst the loss-gradient estimate that Step would take
// now, −(rank-weighted noise)/pop without the L2 term, and changes no
// state: a diagnostic of how much signal a generation carries.
func (t *Trainer) Estimate(dst []float32) Stats {
	dim := len(t.Params)
	if len(dst) != dim {
		panic(fmt.Sprintf("es: Estimate into %d values, %d parameters", len(dst), dim))
	}
	t.Begin()
	st := t.weigh(t.evaluateAll())
	if t.lowRank != nil {
		t.lowRankEstimate()
	}
	invPop := 1 / float32(t.Cfg.Pop)
	t.parallel((dim+gradChunk-1)/gradChunk, func(w, c int) {
		lo := c * gradChunk
		g := dst[lo:min(lo+gradChunk, dim)]
		t.weightedNoise(w, g, lo)
		for i, v := range g {
			g[i] = -float32(v * invPop)
		}
	})
	return st
}

// weigh turns the begun generation's fitness into the pairs' rank weights
// and summarises it.
func (t *Trainer) weigh(fitness []float64, center Score) Stats {
	ranks := CenteredRanks(fitness)
	for p := range t.weights {
		t.weights[p] = float32(ranks[2*p] - ranks[2*p+1])
	}
	t.guide.weigh(t.weights)

	st := Stats{Gen: t.Gen, Center: center, Evaluations: len(fitness) + 1, BestFitness: math.Inf(-1)}
	for _, f := range fitness {
		st.MeanFitness += f
		st.BestFitness = max(st.BestFitness, f)
	}
	st.MeanFitness /= float64(len(fitness))
	return st
}

// weightedNoise writes Σ_p w_p ε_p over parameters lo... to acc, summing the
// pairs in index order whoever computes it (the same bits for any worker).
func (t *Trainer) weightedNoise(w int, acc []float32, lo int) {
	hi := lo + len(acc)
	if t.lowRank != nil { // computed whole by lowRankEstimate
		copy(acc, t.lowRank.grad[lo:hi])
		return
	}
	clear(acc)
	// The pairs with a weight: a zero weight adds only zeros, and the sum
	// (from +0, rounded to nearest) is never −0, so skipping it changes no
	// bit.
	eps, wts := t.epsBuf[w][:0], t.wtsBuf[w][:0]
	for p, wt := range t.weights {
		if wt != 0 {
			off := t.offsets[p]
			eps, wts = append(eps, t.Noise.Values[off+lo:off+hi]), append(wts, wt)
		}
	}
	t.epsBuf[w], t.wtsBuf[w] = eps, wts
	kernels.WeightedSum(kernels.IEEE, acc, eps, wts)
	t.guide.mix(acc, lo)
}
