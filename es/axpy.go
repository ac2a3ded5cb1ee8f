package es

// addScaled sets dst[i] = x[i] + float32(s·y[i]) for i < len(dst): the
// product rounded to float32, then the sum rounded, never fused. It both
// materialises a member (θ ± σε into a scratch vector) and accumulates the
// gradient estimate (acc += w·ε). dst may alias x.
func addScaled(dst, x []float32, s float32, y []float32) {
	x = x[:len(dst)]
	y = y[:len(dst)]
	for i := range dst {
		dst[i] = x[i] + float32(s*y[i])
	}
}
