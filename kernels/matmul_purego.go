package kernels

// The pure-Go product: the canonical chain through the exact scalar
// reference FMA (reference.go). It is the purego backend, the route for an
// environment a SIMD backend cannot do natively, and the oracle of the tests.

// refProduct continues, for each element of the m×n block of c (row stride
// ldc), the chain over p = 0..k-1 in increasing p. The loop runs p outside j
// so that b is read by rows, which changes no element's order.
func refProduct(env Env, c []float32, ldc int, a, b matrix, m, k, n int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		for p := 0; p < k; p++ {
			aip := a.at(i, p)
			bp := b.sub(p, 0)
			for j := range row {
				row[j] = FMA(env, aip, bp.data[j*bp.cs], row[j])
			}
		}
	}
}
