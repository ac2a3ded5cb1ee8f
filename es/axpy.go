package es

import "github.com/seed8b67a5e0/underflow/kernels"

// addScaled sets dst[i] = x[i] + float32(s·y[i]) for i < len(dst): the
// product rounded to float32, then the sum rounded, never fused
// (kernels.AddScaled in IEEE, vectorised where the backend can). It both
// materialises a member (θ ± σε into a scratch vector) and accumulates the
// gradient estimate (acc += w·ε). dst may alias x.
func addScaled(dst, x []float32, s float32, y []float32) {
	kernels.AddScaled(kernels.IEEE, dst, x, y, s)
}
