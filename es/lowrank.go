package es

import (
	"fmt"
	"math"

	"github.com/seed8b67a5e0/underflow/kernels"
)

// Low-rank perturbations (Config.Rank = r > 0), after EGGROLL (Sarkar et
// al. 2025, "Evolution Strategies at the Hyperscale"): each weight matrix W
// (m×n) of pair p is perturbed by E_p = A_p·B_p/√r, with A_p (m×r) and B_p
// (r×n) slices of the noise table, and every other parameter (the biases)
// by full-rank noise ε_p as in plain ES. A member's layer then computes
// x·W + σ·(x·A_p)·B_p/√r, so the work that does not depend on the member
// is shared: x·W for the shared minibatch in the first layer, and in the
// others each W packed once for every member's product.
//
// The member's function is defined by that computation in a fixed order
// (the objective documents it: NetObjective's is in netlowrank.go), so it
// has the same bits on every backend, for any worker count and however
// the pairs are grouped.
// It is not the float32 network with parameters fl(θ + σ·A_p·B_p/√r).
//
// The update is full-rank: Σ_p w_p E_p for the matrices, summed over the
// pairs in index order as one canonical product chain, and Σ_p w_p ε_p for
// the other parameters, as in plain ES.

// Matrix is a weight matrix inside the parameter vector: Rows×Cols values,
// row-major, starting at Off.
type Matrix struct {
	Off, Rows, Cols int
}

// LowRanker is an Objective whose weight matrices low-rank ES perturbs.
type LowRanker interface {
	Objective
	// Matrices lists the weight matrices in increasing Off, without
	// overlap. Every parameter outside them gets full-rank noise.
	Matrices() []Matrix
	// BeginLowRank prepares the work every member of the begun generation
	// shares (for a network, the first layer's product of the shared
	// minibatch with θ's weights). The trainer calls it after Begin, once
	// per generation, from one goroutine; it may use up to threads
	// goroutines.
	BeginLowRank(theta []float32, threads int)
	// NewLowRankEvaluator returns an evaluator of rank-r members for the
	// exclusive use of one slot.
	NewLowRankEvaluator(rank int) LowRankEvaluator
}

// LowRankNoise is one pair's perturbation: for each of the objective's
// matrices, A (Rows×r) and B (r×Cols), row-major; and Rest, the full-rank
// noise of every parameter outside the matrices, in parameter order.
type LowRankNoise struct {
	A, B [][]float32
	Rest []float32
}

// LowRankEvaluator scores low-rank members on the begun generation's data.
type LowRankEvaluator interface {
	// EvaluatePairs scores, for each pair i, the members θ + σ·E_i
	// (plus[i]) and θ − σ·E_i (minus[i]): matrices perturbed by
	// ±sigmaR·A·B, where sigmaR = fl(σ/√r), the rest by ±sigma·Rest. Each
	// score depends only on θ, its pair's noise, the scales and the data,
	// never on which pairs are evaluated together.
	EvaluatePairs(theta []float32, pairs []LowRankNoise, sigma, sigmaR float32, plus, minus []Score)
	// PairsPerCall is how many pairs the evaluator shares work between in
	// one pass; the trainer hands out work in groups of that size.
	PairsPerCall() int
}

// lowRank is the trainer's low-rank state.
type lowRank struct {
	mats   []Matrix
	rest   []span // the parameters outside the matrices, in order
	rank   int
	length int     // noise values per pair
	sigmaR float32 // fl(σ/√r)
	rootR  float32 // fl(1/√r): E_p = A_p·B_p·rootR in the update
	evals  []LowRankEvaluator
	noise  [][]LowRankNoise // per slot: the pairs of its current call
	grad   []float32        // Σ_p w_p E_p of the begun generation, all parameters
	aCat   []float32        // the update's A blocks side by side
	bCat   []float32        // and its weighted B blocks stacked
}

// span is a run of parameters [Off, Off+Len).
type span struct{ Off, Len int }

// updatePairs is the number of pairs one product of the update takes: their
// A blocks side by side and weighted B blocks stacked make a K-block of
// about 256, and each block's product continues the chains of the last.
const updatePairs = 64

func newLowRank(obj LowRanker, cfg Config, dim int) (*lowRank, error) {
	r := cfg.Rank
	lr := &lowRank{mats: obj.Matrices(), rank: r,
		sigmaR: float32(float64(cfg.Sigma) / math.Sqrt(float64(r))),
		rootR:  float32(1 / math.Sqrt(float64(r)))}
	next := 0
	maxRows, maxCols := 0, 0
	for i, m := range lr.mats {
		if m.Rows <= 0 || m.Cols <= 0 || m.Off < next || m.Off+m.Rows*m.Cols > dim {
			return nil, fmt.Errorf("es: weight matrix %d (%d×%d at %d) is empty, overlaps the one before or leaves the %d parameters", i, m.Rows, m.Cols, m.Off, dim)
		}
		if m.Off > next {
			lr.rest = append(lr.rest, span{next, m.Off - next})
		}
		next = m.Off + m.Rows*m.Cols
		lr.length += r * (m.Rows + m.Cols)
		maxRows, maxCols = max(maxRows, m.Rows), max(maxCols, m.Cols)
	}
	if len(lr.mats) == 0 {
		return nil, fmt.Errorf("es: rank %d needs at least one weight matrix; the objective has none", r)
	}
	if next < dim {
		lr.rest = append(lr.rest, span{next, dim - next})
	}
	for _, s := range lr.rest {
		lr.length += s.Len
	}
	if lr.length > cfg.NoiseSize {
		return nil, fmt.Errorf("es: a rank-%d perturbation takes %d noise values, the table has %d", r, lr.length, cfg.NoiseSize)
	}
	lr.grad = make([]float32, dim)
	lr.aCat = make([]float32, maxRows*updatePairs*r)
	lr.bCat = make([]float32, updatePairs*r*maxCols)
	return lr, nil
}

// pairNoise cuts one pair's noise slice into its parts (no copy).
func (lr *lowRank) pairNoise(dst *LowRankNoise, slice []float32) {
	dst.A, dst.B = dst.A[:0], dst.B[:0]
	for _, m := range lr.mats {
		a, b := m.Rows*lr.rank, lr.rank*m.Cols
		dst.A = append(dst.A, slice[:a:a])
		dst.B = append(dst.B, slice[a:a+b:a+b])
		slice = slice[a+b:]
	}
	dst.Rest = slice[:len(slice):len(slice)]
}

// lowRankEstimate writes Σ_p w_p E_p to lr.grad: for each matrix the canonical
// chain (IEEE) over k = p·r + t, pairs in index order, of
// A_p[i][t]·fl(fl(w_p·rootR)·B_p[t][j]), run as products of updatePairs
// pairs at a time, each continuing the chains of the one before; for the
// rest, Σ_p w_p ε_p in pair order as plain ES sums it.
func (t *Trainer) lowRankEstimate() {
	lr, r := t.lowRank, t.lowRank.rank
	pairs := len(t.weights)
	var pn LowRankNoise
	slice := func(p int) []float32 { return t.Noise.Slice(t.offsets[p], lr.length) }
	threads := t.Cfg.Workers
	for mi, m := range lr.mats {
		g := lr.grad[m.Off : m.Off+m.Rows*m.Cols]
		clear(g)
		for p0 := 0; p0 < pairs; p0 += updatePairs {
			q := min(updatePairs, pairs-p0)
			k := q * r
			aCat, bCat := lr.aCat[:m.Rows*k], lr.bCat[:k*m.Cols]
			for i := 0; i < q; i++ {
				lr.pairNoise(&pn, slice(p0+i))
				a, b := pn.A[mi], pn.B[mi]
				for row := 0; row < m.Rows; row++ {
					copy(aCat[row*k+i*r:row*k+i*r+r], a[row*r:row*r+r])
				}
				w := float32(t.weights[p0+i] * lr.rootR)
				dst := bCat[i*r*m.Cols : (i+1)*r*m.Cols]
				for j, v := range b {
					dst[j] = float32(w * v)
				}
			}
			matMulAccParallel(g, aCat, bCat, m.Rows, k, m.Cols, threads)
		}
	}
	off := 0
	for _, s := range lr.rest {
		g := lr.grad[s.Off : s.Off+s.Len]
		clear(g)
		for p, wt := range t.weights {
			if wt == 0 { // adds only zeros (the sum is never −0): skipping changes no bit
				continue
			}
			lr.pairNoise(&pn, slice(p))
			kernels.AddScaled(kernels.IEEE, g, g, pn.Rest[off:off+s.Len], wt)
		}
		off += s.Len
	}
}

// matMulAccParallel continues the IEEE chains of dst (m×n) with a·b over k
// on up to threads goroutines. The kernels have no parallel Acc form, so
// the rows are split here; each element's chain is the same.
func matMulAccParallel(dst, a, b []float32, m, k, n, threads int) {
	threads = max(1, min(threads, m/48))
	if threads == 1 {
		kernels.MatMulAcc(kernels.IEEE, dst, a, b, m, k, n)
		return
	}
	step := (m + threads - 1) / threads
	done := make(chan struct{}, threads)
	for i0 := 0; i0 < m; i0 += step {
		rows := min(step, m-i0)
		go func() {
			kernels.MatMulAcc(kernels.IEEE, dst[i0*n:(i0+rows)*n], a[i0*k:(i0+rows)*k], b, rows, k, n)
			done <- struct{}{}
		}()
	}
	for i0 := 0; i0 < m; i0 += step {
		<-done
	}
}
