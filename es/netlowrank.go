package es

import (
	"fmt"
	"slices"

	"github.com/seed8b67a5e0/underflow/kernels"
)

// NetObjective's low-rank members (Config.Rank = r > 0, lowrank.go).
//
// Member s·(pair p), s = ±1, with c = s·fl(σ/√r), runs every layer l
// (W_l, b_l of θ; A_l, B_l, ε_l of the pair's noise) on its input h
// (h_0 = the minibatch x) as:
//
//	y = h·W_l                  canonical chains from +0, ProductEnv
//	u = h·A_l                  canonical chains from +0, ProductEnv (batch×r)
//	y = y + u·B'               each chain of y continued over r more steps,
//	                           ProductEnv, with B' = fl(c·B_l) (IEEE)
//	b = fl(b_l + fl(s·σ·ε_l))  the bias, full-rank noise (IEEE)
//	h = Activate_l(y, b)       the recipe's elementwise ops (fpnet.Activate)
//
// and is scored like any member (fitness on the last layer's logits). This
// computation is the member's definition: it is not the float32 network
// with weights fl(W_l + σ·A_l·B_l/√r), whose every weight would be rounded,
// but it is exact, so it has the same bits on every backend.
//
// What the members share: h·W_1 of the minibatch is computed once per
// generation, and each deeper W_l is packed once per generation for the
// kernel (BeginLowRank); u = x·A_1 is computed once for both members of a
// pair, for several pairs in one product. Each member then runs its rows
// through all the layers a chunk at a time (rows are independent), so that
// a chunk's activations stay in cache from one layer to the next. None of
// this changes a bit: every element's chain is fixed.

// lowRankChunk is the number of a member's rows run together through the
// layers: a chunk's activations (lowRankChunk × 512 floats per layer) stay
// in a 512 KiB L2, and it is a whole number of AVX2 (6) and AVX-512 (10)
// row tiles.
const lowRankChunk = 120

// Matrices makes the objective a LowRanker: the network's weight matrices.
func (o *NetObjective) Matrices() []Matrix {
	var ms []Matrix
	for _, ly := range o.Net.Arch.LayerViews() {
		ms = append(ms, Matrix{Off: ly.WOff, Rows: ly.FanIn, Cols: ly.FanOut})
	}
	return ms
}

// BeginLowRank computes h·W_1 of the generation's minibatch with θ's first
// layer, which every low-rank member starts its first layer from, and packs
// θ's deeper weight matrices for the members' products.
func (o *NetObjective) BeginLowRank(theta []float32, threads int) {
	views := o.Net.Arch.LayerViews()
	ly := views[0]
	if len(o.first) < o.Batch*ly.FanOut {
		o.first = make([]float32, o.Batch*ly.FanOut)
	}
	kernels.MatMulParallel(o.Net.Recipe.ProductEnv, o.first, o.x, ly.W(theta), o.Batch, ly.FanIn, ly.FanOut, max(1, threads))
	if len(o.packed) != len(views) {
		o.packed = make([]kernels.PackedB, len(views))
	}
	for l, ly := range views[1:] {
		o.packed[l+1].Pack(ly.W(theta), ly.FanIn, ly.FanOut)
	}
}

// NewLowRankEvaluator returns an evaluator of rank-r members with its own
// workspace.
func (o *NetObjective) NewLowRankEvaluator(rank int) LowRankEvaluator {
	a := o.Net.Arch
	// x·A_1 of this many pairs fills one 16-column panel of the kernel.
	pairs := max(1, 16/rank)
	chunk := min(o.Batch, lowRankChunk)
	e := &netLowRank{o: o, rank: rank, pairs: pairs,
		aFirst:  make([]float32, a.Inputs()*pairs*rank),
		uFirst:  make([]float32, o.Batch*pairs*rank),
		u:       make([]float32, o.Batch*rank),
		uChunk:  make([]float32, chunk*rank),
		logits:  make([]float32, o.Batch*a.Classes()),
		scratch: make([]float32, slices.Max(a.Sizes[1:])),
	}
	for l, s := range a.Sizes[1:] {
		e.y = append(e.y, make([]float32, chunk*s))
		e.bScaled = append(e.bScaled, make([]float32, rank*s))
		e.bias = append(e.bias, make([]float32, s))
		if l < a.Layers()-1 {
			e.h = append(e.h, make([]float32, chunk*s))
		}
	}
	return e
}

type netLowRank struct {
	o           *NetObjective
	rank, pairs int
	aFirst      []float32   // the pairs' A_1 side by side (inputs × pairs·r)
	uFirst      []float32   // x·aFirst (Batch × pairs·r)
	u           []float32   // one pair's x·A_1 (Batch × r)
	uChunk      []float32   // a chunk's h·A_l
	y           [][]float32 // per layer, a chunk's output before its elementwise ops
	h           [][]float32 // per hidden layer, a chunk's activations
	logits      []float32   // one member's
	bScaled     [][]float32 // per layer, the member's B' = fl(c·B_l)
	bias        [][]float32 // per layer, the member's perturbed bias
	scratch     []float32   // fpnet.Activate's
}

func (e *netLowRank) PairsPerCall() int { return e.pairs }

func (e *netLowRank) EvaluatePairs(theta []float32, pairs []LowRankNoise, sigma, sigmaR float32, plus, minus []Score) {
	o := e.o
	views := o.Net.Arch.LayerViews()
	if len(o.first) < o.Batch*views[0].FanOut || len(o.packed) != len(views) {
		panic("es: low-rank evaluation before BeginLowRank")
	}
	for i := range pairs {
		if len(pairs[i].A) != len(views) {
			panic(fmt.Sprintf("es: low-rank noise for %d matrices, the network has %d layers", len(pairs[i].A), len(views)))
		}
	}
	for lo := 0; lo < len(pairs); lo += e.pairs {
		hi := min(lo+e.pairs, len(pairs))
		e.firstProducts(pairs[lo:hi])
		for i := lo; i < hi; i++ {
			// Both members' u of the first layer: the pair's columns of
			// x·A_1.
			r, k := e.rank, (hi-lo)*e.rank
			for row := 0; row < o.Batch; row++ {
				copy(e.u[row*r:row*r+r], e.uFirst[row*k+(i-lo)*r:row*k+(i-lo)*r+r])
			}
			plus[i] = e.member(theta, &pairs[i], sigma, sigmaR)
			minus[i] = e.member(theta, &pairs[i], -sigma, -sigmaR)
		}
	}
}

// firstProducts computes x·A_1 of the pairs in one product, their A_1 side
// by side.
func (e *netLowRank) firstProducts(pairs []LowRankNoise) {
	o, r := e.o, e.rank
	fin := o.Net.Arch.Inputs()
	k := len(pairs) * r
	aCat := e.aFirst[:fin*k]
	for i, pn := range pairs {
		for row := 0; row < fin; row++ {
			copy(aCat[row*k+i*r:row*k+i*r+r], pn.A[0][row*r:row*r+r])
		}
	}
	kernels.MatMul(o.Net.Recipe.ProductEnv, e.uFirst[:o.Batch*k], o.x, aCat, o.Batch, fin, k)
}

// member scores the member with scales s = ±σ and c = ±fl(σ/√r) of the
// pair whose x·A_1 is in e.u. Its rows run through every layer a chunk at
// a time (the rows are independent), so a chunk's activations stay in
// cache from layer to layer.
func (e *netLowRank) member(theta []float32, pn *LowRankNoise, s, c float32) Score {
	o, r := e.o, e.rank
	net, batch := o.Net, o.Batch
	pe := net.Recipe.ProductEnv
	views := net.Arch.LayerViews()
	restOff := 0 // layer l's bias noise in Rest
	for l, ly := range views {
		bs := e.bScaled[l]
		for j, v := range pn.B[l][:r*ly.FanOut] {
			bs[j] = float32(c * v)
		}
		kernels.AddScaled(kernels.IEEE, e.bias[l], ly.B(theta), pn.Rest[restOff:restOff+ly.FanOut], s)
		restOff += ly.FanOut
	}
	last := len(views) - 1
	classes := net.Arch.Classes()
	for r0 := 0; r0 < batch; r0 += lowRankChunk {
		rows := min(lowRankChunk, batch-r0)
		var h []float32
		for l, ly := range views {
			fin, fout := ly.FanIn, ly.FanOut
			y := e.y[l][:rows*fout]
			u := e.u[r0*r : (r0+rows)*r] // the pair's x·A_1
			if l == 0 {
				copy(y, o.first[r0*fout:(r0+rows)*fout])
			} else {
				kernels.MatMulPacked(pe, y, h, &o.packed[l], rows)
				u = e.uChunk[:rows*r]
				kernels.MatMul(pe, u, h, pn.A[l], rows, fin, r)
			}
			kernels.MatMulAcc(pe, y, u, e.bScaled[l], rows, r, fout)
			act := e.logits[r0*classes : (r0+rows)*classes]
			if l < last {
				act = e.h[l][:rows*fout]
			}
			net.Activate(l, act, y, e.bias[l], e.scratch, rows)
			h = act
		}
	}
	return o.scoreLogits(e.logits)
}
