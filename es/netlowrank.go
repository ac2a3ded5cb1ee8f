package es

import (
	"fmt"

	"github.com/seed8b67a5e0/underflow/fpnet"
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
// generation (BeginLowRank), and u = x·A_1 once for both members of a
// pair. The deeper layers' h·W_l run once for the stacked activations of
// several pairs, so each W_l is packed once for all of them. Stacking
// changes no bit: every element's chain is fixed.

// lowRankRows is about how many stacked activation rows (two members per
// pair, Batch rows each) one pass of the low-rank evaluator takes: enough
// that packing each weight matrix costs little beside its product.
const lowRankRows = 800

// Matrices makes the objective a LowRanker: the network's weight matrices.
func (o *NetObjective) Matrices() []Matrix {
	var ms []Matrix
	for _, ly := range o.Net.Arch.LayerViews() {
		ms = append(ms, Matrix{Off: ly.WOff, Rows: ly.FanIn, Cols: ly.FanOut})
	}
	return ms
}

// BeginLowRank computes h·W_1 of the generation's minibatch with θ's first
// layer, which every low-rank member starts its first layer from.
func (o *NetObjective) BeginLowRank(theta []float32, threads int) {
	ly := o.Net.Arch.LayerViews()[0]
	if len(o.first) < o.Batch*ly.FanOut {
		o.first = make([]float32, o.Batch*ly.FanOut)
	}
	kernels.MatMulParallel(o.Net.Recipe.ProductEnv, o.first, o.x, ly.W(theta), o.Batch, ly.FanIn, ly.FanOut, max(1, threads))
}

// NewLowRankEvaluator returns an evaluator of rank-r members with its own
// stacked workspace.
func (o *NetObjective) NewLowRankEvaluator(rank int) LowRankEvaluator {
	a := o.Net.Arch
	pairs := max(1, lowRankRows/(2*o.Batch))
	maxOut := 0
	for _, s := range a.Sizes[1:] {
		maxOut = max(maxOut, s)
	}
	return &netLowRank{o: o, rank: rank, pairs: pairs,
		ws:      o.Net.NewWorkspace(2 * o.Batch * pairs),
		aFirst:  make([]float32, a.Inputs()*pairs*rank),
		uFirst:  make([]float32, o.Batch*pairs*rank),
		u:       make([]float32, 2*o.Batch*rank),
		bScaled: make([]float32, rank*maxOut),
		bias:    make([]float32, maxOut),
		scratch: make([]float32, maxOut),
	}
}

type netLowRank struct {
	o           *NetObjective
	rank, pairs int
	ws          *fpnet.Workspace // the stacked activations: pair i's plus member, then its minus member, Batch rows each
	aFirst      []float32        // the pairs' A_1 side by side (inputs × pairs·r)
	uFirst      []float32        // x·aFirst (Batch × pairs·r)
	u           []float32        // one pair's h·A_l (2·Batch × r)
	bScaled     []float32        // B' = fl(c·B_l)
	bias        []float32        // a member's perturbed bias
	scratch     []float32        // fpnet.Activate's
}

func (e *netLowRank) PairsPerCall() int { return e.pairs }

func (e *netLowRank) EvaluatePairs(theta []float32, pairs []LowRankNoise, sigma, sigmaR float32, plus, minus []Score) {
	for lo := 0; lo < len(pairs); lo += e.pairs {
		hi := min(lo+e.pairs, len(pairs))
		e.evaluate(theta, pairs[lo:hi], sigma, sigmaR, plus[lo:hi], minus[lo:hi])
	}
}

// evaluate runs at most e.pairs pairs stacked.
func (e *netLowRank) evaluate(theta []float32, pairs []LowRankNoise, sigma, sigmaR float32, plus, minus []Score) {
	o, r, n := e.o, e.rank, len(pairs)
	net, batch := o.Net, o.Batch
	pe := net.Recipe.ProductEnv
	views := net.Arch.LayerViews()
	if len(o.first) < batch*views[0].FanOut {
		panic("es: low-rank evaluation before BeginLowRank")
	}
	for i := range pairs {
		if len(pairs[i].A) != len(views) {
			panic(fmt.Sprintf("es: low-rank noise for %d matrices, the network has %d layers", len(pairs[i].A), len(views)))
		}
	}
	rows := 2 * batch * n // stacked members
	restOff := 0          // layer l's bias noise in Rest
	var in []float32
	for l, ly := range views {
		fin, fout := ly.FanIn, ly.FanOut
		prod, act := e.ws.Prod[l][:rows*fout], e.ws.Act[l][:rows*fout]
		if l == 0 {
			// x·A_1 of every pair in one product: the pairs' A_1 side by side.
			k := n * r
			aCat, uCat := e.aFirst[:fin*k], e.uFirst[:batch*k]
			for i, pn := range pairs {
				for row := 0; row < fin; row++ {
					copy(aCat[row*k+i*r:row*k+i*r+r], pn.A[0][row*r:row*r+r])
				}
			}
			kernels.MatMul(pe, uCat, o.x, aCat, batch, fin, k)
			for i := range pairs {
				u := e.u[:batch*r]
				for row := 0; row < batch; row++ {
					copy(u[row*r:row*r+r], uCat[row*k+i*r:row*k+i*r+r])
				}
				for m := 0; m < 2; m++ {
					y := prod[(2*i+m)*batch*fout : (2*i+m+1)*batch*fout]
					copy(y, o.first[:batch*fout])
					e.lowRankTerm(y, u, pairs[i].B[l], m, sigmaR, batch, fout)
				}
			}
		} else {
			kernels.MatMul(pe, prod, in[:rows*fin], ly.W(theta), rows, fin, fout)
			for i := range pairs {
				h := in[2*i*batch*fin : 2*(i+1)*batch*fin]
				u := e.u[:2*batch*r]
				kernels.MatMul(pe, u, h, pairs[i].A[l], 2*batch, fin, r)
				for m := 0; m < 2; m++ {
					y := prod[(2*i+m)*batch*fout : (2*i+m+1)*batch*fout]
					e.lowRankTerm(y, u[m*batch*r:(m+1)*batch*r], pairs[i].B[l], m, sigmaR, batch, fout)
				}
			}
		}
		for i := range pairs {
			for m := 0; m < 2; m++ {
				s := sigma
				if m == 1 {
					s = -sigma
				}
				bias := e.bias[:fout]
				kernels.AddScaled(kernels.IEEE, bias, ly.B(theta), pairs[i].Rest[restOff:restOff+fout], s)
				blk := (2*i + m) * batch * fout
				net.Activate(l, act[blk:blk+batch*fout], prod[blk:blk+batch*fout], bias, e.scratch, batch)
			}
		}
		restOff += fout
		in = act
	}
	classes := net.Arch.Classes()
	for i := range pairs {
		plus[i] = o.scoreLogits(in[2*i*batch*classes : (2*i+1)*batch*classes])
		minus[i] = o.scoreLogits(in[(2*i+1)*batch*classes : (2*i+2)*batch*classes])
	}
}

// lowRankTerm continues the chains of y (batch×cols) with u·B', B' =
// fl(c·B), c = ±sigmaR (member m = 0: +, 1: −).
func (e *netLowRank) lowRankTerm(y, u, b []float32, m int, sigmaR float32, batch, cols int) {
	c := sigmaR
	if m == 1 {
		c = -sigmaR
	}
	bs := e.bScaled[:e.rank*cols]
	for j, v := range b[:e.rank*cols] {
		bs[j] = float32(c * v)
	}
	kernels.MatMulAcc(e.o.Net.Recipe.ProductEnv, y, u, bs, batch, e.rank, cols)
}
