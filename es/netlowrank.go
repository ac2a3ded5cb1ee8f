package es

import (
	"fmt"

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
// in chunks small enough that a chunk's y stays in cache from its product
// through the low-rank term to its elementwise ops. None of this changes a
// bit: every element's chain is fixed.

// lowRankChunk is the number of a member's rows run together: a chunk's y
// (lowRankChunk × 512 floats) stays in a 512 KiB L2 between the passes, and
// it is a whole number of AVX2 (6) and AVX-512 (10) row tiles.
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
	maxOut := 0
	for _, s := range a.Sizes[1:] {
		maxOut = max(maxOut, s)
	}
	e := &netLowRank{o: o, rank: rank, pairs: pairs,
		aFirst:  make([]float32, a.Inputs()*pairs*rank),
		uFirst:  make([]float32, o.Batch*pairs*rank),
		u:       make([]float32, 2*o.Batch*rank),
		y:       make([]float32, min(o.Batch, lowRankChunk)*maxOut),
		bScaled: make([]float32, rank*maxOut),
		bias:    make([]float32, maxOut),
		scratch: make([]float32, maxOut),
	}
	for _, s := range a.Sizes[1:] {
		e.act = append(e.act, make([]float32, 2*o.Batch*s))
	}
	return e
}

type netLowRank struct {
	o           *NetObjective
	rank, pairs int
	act         [][]float32 // per layer, one pair's activations: the plus member's Batch rows, then the minus member's
	aFirst      []float32   // the pairs' A_1 side by side (inputs × pairs·r)
	uFirst      []float32   // x·aFirst (Batch × pairs·r)
	u           []float32   // one pair's h·A_l (2·Batch × r)
	y           []float32   // one chunk of a member's layer output before its elementwise ops
	bScaled     []float32   // B' = fl(c·B_l)
	bias        []float32   // a member's perturbed bias
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
			plus[i], minus[i] = e.evaluate(theta, &pairs[i], i-lo, hi-lo, sigma, sigmaR)
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

// evaluate scores the pair's two members; the pair is the i-th of the n
// whose x·A_1 firstProducts computed.
func (e *netLowRank) evaluate(theta []float32, pn *LowRankNoise, i, n int, sigma, sigmaR float32) (plus, minus Score) {
	o, r := e.o, e.rank
	net, batch := o.Net, o.Batch
	pe := net.Recipe.ProductEnv
	restOff := 0 // layer l's bias noise in Rest
	var in []float32
	for l, ly := range net.Arch.LayerViews() {
		fin, fout := ly.FanIn, ly.FanOut
		act := e.act[l]
		if l == 0 {
			// Both members' u: the pair's columns of x·A_1.
			u, k := e.u[:batch*r], n*r
			for row := 0; row < batch; row++ {
				copy(u[row*r:row*r+r], e.uFirst[row*k+i*r:row*k+i*r+r])
			}
		} else {
			kernels.MatMul(pe, e.u[:2*batch*r], in[:2*batch*fin], pn.A[l], 2*batch, fin, r)
		}
		for m := 0; m < 2; m++ {
			c, s := sigmaR, sigma
			if m == 1 {
				c, s = -sigmaR, -sigma
			}
			bs := e.bScaled[:r*fout]
			for j, v := range pn.B[l][:r*fout] {
				bs[j] = float32(c * v)
			}
			bias := e.bias[:fout]
			kernels.AddScaled(kernels.IEEE, bias, ly.B(theta), pn.Rest[restOff:restOff+fout], s)
			for r0 := 0; r0 < batch; r0 += lowRankChunk {
				rows := min(lowRankChunk, batch-r0)
				y := e.y[:rows*fout]
				if l == 0 {
					copy(y, o.first[r0*fout:(r0+rows)*fout])
				} else {
					h := in[(m*batch+r0)*fin : (m*batch+r0+rows)*fin]
					kernels.MatMulPacked(pe, y, h, &o.packed[l], rows)
				}
				ur := r0 // u's rows for these: member 0 and 1 share x·A_1
				if l > 0 {
					ur += m * batch
				}
				kernels.MatMulAcc(pe, y, e.u[ur*r:(ur+rows)*r], bs, rows, r, fout)
				out := (m*batch + r0) * fout
				net.Activate(l, act[out:out+rows*fout], y, bias, e.scratch, rows)
			}
		}
		restOff += fout
		in = act
	}
	classes := net.Arch.Classes()
	return o.scoreLogits(in[:batch*classes]), o.scoreLogits(in[batch*classes : 2*batch*classes])
}
