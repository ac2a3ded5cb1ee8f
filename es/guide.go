package es

import (
	"math"

	"github.com/seed8b67a5e0/underflow/fpnet/detmath"
	"github.com/seed8b67a5e0/underflow/kernels"
)

// Guided ES (Maheswaranathan et al., "Guided evolutionary strategies",
// ICML 2019) with a one-dimensional guiding subspace: each pair's
// perturbation is
//
//	ε_p = √(1−β)·z_p + √(β·n)·ζ_p·û
//
// where z_p is the pair's slice of the noise table, ζ_p one standard normal
// per pair, û the unit surrogate loss gradient at θ on the generation's
// minibatch, n the dimension and β = Config.Guide. E‖ε‖² = n as in plain
// ES, a share β of it along û. Fitness is still measured on the exact
// function, so the update follows the exact function along û and along
// random directions; the surrogate only says where to look.
//
// Every product is rounded to float32 before it is added (no fusion) and
// every reduction runs in a fixed order, so the bits do not depend on the
// worker count or the backend.

// guideState is the trainer's per-generation guided-ES state. Its methods
// are no-ops on a nil receiver, which is plain ES.
type guideState struct {
	obj  Guider
	unit []float32 // û: the surrogate gradient at θ, then scaled to unit length in place
	zeta []float32 // ζ_p of this generation's pairs

	// Fixed by the configuration.
	isoSigma float32 // σ·√(1−β): the isotropic noise's scale
	isoShare float32 // √(1−β)
	rootBN   float64 // √(β·n)
	along    float32 // σ·√(β·n): scale of ζ_p·û in a member

	alongW float32 // √(β·n)·Σ_p w_p ζ_p: the û part of this generation's estimate
}

func newGuideState(obj Guider, cfg Config, dim int) *guideState {
	beta, n := float64(cfg.Guide), float64(dim)
	rootBN := math.Sqrt(beta * n)
	return &guideState{obj: obj, unit: make([]float32, dim), zeta: make([]float32, cfg.Pop/2),
		isoSigma: float32(float64(cfg.Sigma) * math.Sqrt(1-beta)), isoShare: float32(math.Sqrt(1 - beta)),
		rootBN: rootBN, along: float32(float64(cfg.Sigma) * rootBN)}
}

// begin computes û at params and draws the pairs' ζ_p for generation gen.
func (g *guideState) begin(params []float32, seed uint64, gen int64) {
	g.obj.Surrogate(g.unit, params)
	inv := float32(0) // a zero surrogate gradient leaves only the isotropic part
	if norm := frobenius(g.unit); norm > 0 && !math.IsInf(norm, 0) {
		inv = float32(1 / norm)
	}
	for i, v := range g.unit {
		g.unit[i] = float32(v * inv)
	}
	for p := range g.zeta {
		fillGaussian(g.zeta[p:p+1], detmath.StreamKey(seed, tagGuide, uint64(gen), uint64(p)))
	}
}

// perturb adds sign·σ√(βn)·ζ_p·û to the member s (which already holds
// θ + sign·σ√(1−β)·z_p).
func (g *guideState) perturb(s []float32, p int, sign float32) {
	if g == nil {
		return
	}
	kernels.AddScaled(kernels.IEEE, s, s, g.unit, sign*float32(g.along*g.zeta[p]))
}

// weigh computes the û part of the gradient estimate from the pairs' rank
// weights, in pair order.
func (g *guideState) weigh(weights []float32) {
	if g == nil {
		return
	}
	var s float64
	for p, w := range weights {
		s = float64(float64(w)*float64(g.zeta[p])) + s
	}
	g.alongW = float32(g.rootBN * s)
}

// mix turns the isotropic sum Σ_p w_p z_p over parameters lo... into the
// guided estimate Σ_p w_p ε_p.
func (g *guideState) mix(acc []float32, lo int) {
	if g == nil {
		return
	}
	u := g.unit[lo : lo+len(acc)]
	for i, v := range acc {
		acc[i] = float32(g.isoShare*v) + float32(g.alongW*u[i])
	}
}
