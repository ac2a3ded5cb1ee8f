package es

import "github.com/seed8b67a5e0/underflow/fpnet"

// Adam is fpnet's Adam (float32, products rounded before they are added,
// so the same bits on every platform), in the starter's form: step size
// lr·√(1−β2^t)/(1−β1^t), denominator √v + eps, no weight decay (ES adds
// its L2 term to the gradient). The trainer updates it chunk by chunk
// (StepRange) and checkpoints its state.
type Adam = fpnet.Adam

// NewAdam returns Adam for n parameters.
func NewAdam(n int, lr, beta1, beta2, eps float32) *Adam {
	return fpnet.NewAdam(n, lr, beta1, beta2, eps)
}
