package es

import "math"

// Adam is the optimizer of the update, with its state exposed so that a
// checkpoint can carry it. Every operation is float32 with products rounded
// before they are added (no fusion), so the update has the same bits on every
// platform and is elementwise, so any split of the vector across goroutines
// gives the same result.
type Adam struct {
	LR, Beta1, Beta2, Eps float32
	T                     int64 // steps taken
	M, V                  []float32
}

// NewAdam returns Adam for n parameters, in the starter's form: step size
// lr·√(1−β2^t)/(1−β1^t), denominator √v + eps.
func NewAdam(n int, lr, beta1, beta2, eps float32) *Adam {
	return &Adam{LR: lr, Beta1: beta1, Beta2: beta2, Eps: eps, M: make([]float32, n), V: make([]float32, n)}
}

// stepSize returns the bias-corrected step size for step t (1-based). The
// powers are repeated products, not math.Pow, so they are exact functions of
// t on every platform.
func (o *Adam) stepSize(t int64) float32 {
	p1, p2 := 1.0, 1.0
	for i := int64(0); i < t; i++ {
		p1 *= float64(o.Beta1)
		p2 *= float64(o.Beta2)
	}
	return float32(float64(o.LR) * math.Sqrt(1-p2) / (1 - p1))
}

// update applies one step with step size a to params[lo:hi] using grad,
// which holds the gradient of that range only (grad[i-lo]).
func (o *Adam) update(a float32, params, grad []float32, lo, hi int) {
	b1, b2, eps := o.Beta1, o.Beta2, o.Eps
	c1, c2 := 1-b1, 1-b2
	m, v, p := o.M[lo:hi], o.V[lo:hi], params[lo:hi]
	g := grad[:len(p)]
	for i := range p {
		gi := g[i]
		mi := float32(b1*m[i]) + float32(c1*gi)
		vi := float32(b2*v[i]) + float32(c2*float32(gi*gi))
		m[i], v[i] = mi, vi
		den := float32(math.Sqrt(float64(vi))) + eps
		p[i] -= float32(a*mi) / den
	}
}
