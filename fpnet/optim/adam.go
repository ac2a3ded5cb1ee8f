// Package optim is Adam for fpnet's backprop trainers and for es: one
// optimizer whose same gradients give the same parameters, bit for bit, on
// every platform.
package optim

import (
	"fmt"

	"github.com/seed8b67a5e0/underflow/fpnet/detmath"
	"github.com/seed8b67a5e0/underflow/fpnet/internal/parallel"
	"github.com/seed8b67a5e0/underflow/kernels"
)

// Adam is the Adam optimizer (Kingma & Ba) in float32, written with an
// explicit conversion around every product that meets an add so that the
// same gradients give the same parameters, bit for bit, on every platform.
// The state is exported for checkpoints.
type Adam struct {
	LR, Beta1, Beta2, Eps float32
	// WeightDecay is decoupled (AdamW): p -= lr·WeightDecay·p each step.
	WeightDecay float32
	// Workers is how many goroutines share a step (elementwise, so the bits
	// do not depend on it; 0 or 1: the caller's).
	Workers    int
	M, V       []float32
	T          int64   // steps taken
	pow1, pow2 float64 // Beta1^T, Beta2^T (recomputed from T when zero)
}

// NewAdam returns Adam for n parameters.
func NewAdam(n int, lr, beta1, beta2, eps float32) *Adam {
	return &Adam{LR: lr, Beta1: beta1, Beta2: beta2, Eps: eps, M: make([]float32, n), V: make([]float32, n)}
}

// Step moves params against grad (a gradient of the loss to minimise).
func (o *Adam) Step(params, grad []float32) {
	if len(params) != len(o.M) || len(grad) != len(o.M) {
		panic(fmt.Sprintf("optim: Adam.Step got %d params and %d gradients for state of %d", len(params), len(grad), len(o.M)))
	}
	if o.T == 0 || o.pow1 == 0 {
		o.pow1, o.pow2 = 1, 1
		for i := int64(0); i < o.T; i++ {
			o.pow1 *= float64(o.Beta1)
			o.pow2 *= float64(o.Beta2)
		}
	}
	o.T++
	o.pow1 *= float64(o.Beta1)
	o.pow2 *= float64(o.Beta2)
	a := o.stepSizeFrom(o.pow1, o.pow2)
	parallel.Range(len(params), o.Workers, func(lo, hi int) {
		o.StepRange(a, params, grad[lo:hi], lo, hi)
	})
}

// StepSize returns the bias-corrected step size of step t (1-based), as
// Step computes it: the powers are repeated products, not math.Pow, so
// they are the same on every platform.
func (o *Adam) StepSize(t int64) float32 {
	p1, p2 := 1.0, 1.0
	for i := int64(0); i < t; i++ {
		p1 *= float64(o.Beta1)
		p2 *= float64(o.Beta2)
	}
	return o.stepSizeFrom(p1, p2)
}

// stepSizeFrom folds the bias correction into the step size, as in the
// paper's efficient form: float64, then rounded once.
func (o *Adam) stepSizeFrom(pow1, pow2 float64) float32 {
	return float32(float64(o.LR) * detmath.Sqrt(1-pow2) / (1 - pow1))
}

// StepRange applies one step of step size a (StepSize) to params[lo:hi],
// with grad holding that range's gradient (grad[i-lo]), without advancing
// T: a caller that splits the parameters into ranges (ES updates chunk by
// chunk) advances it once per step. Elementwise, so any split gives the
// same bits.
func (o *Adam) StepRange(a float32, params, grad []float32, lo, hi int) {
	b1, b2 := o.Beta1, o.Beta2
	adamRange(params[lo:hi], grad[:hi-lo], o.M[lo:hi], o.V[lo:hi], b1, b2, 1-b1, 1-b2, o.Eps, o.LR*o.WeightDecay, a)
}

// adamRange is the Adam update of one contiguous range:
// kernels.AdamUpdate, generated AVX on amd64 and an exact Go loop
// elsewhere, every product that meets an add rounded on its own.
func adamRange(params, grad, m, v []float32, b1, b2, c1, c2, eps, decay, stepSize float32) {
	kernels.AdamUpdate(params, grad, m, v, b1, b2, c1, c2, eps, decay, stepSize)
}
