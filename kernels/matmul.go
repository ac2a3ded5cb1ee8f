package kernels

// Placeholder product so that other packages compile while the blocked SIMD
// products are written: the canonical FMA chain of float-semantics.md, one
// element at a time, through the exact reference. The MATMUL work replaces
// the insides of this file and keeps the names.

import "fmt"

func checkDims(op string, dst, a, b []float32, m, k, n int) {
	if m < 0 || k < 0 || n < 0 {
		panic(fmt.Sprintf("kernels.%s: negative dimension m=%d k=%d n=%d", op, m, k, n))
	}
	if len(a) < m*k || len(b) < k*n || len(dst) < m*n {
		panic(fmt.Sprintf("kernels.%s: slices too short for m=%d k=%d n=%d: len(a)=%d (want %d), len(b)=%d (want %d), len(dst)=%d (want %d)",
			op, m, k, n, len(a), m*k, len(b), k*n, len(dst), m*n))
	}
}

// refProduct runs the chain for every element; at(i,p) and bt(p,j) read the
// operands so that one loop serves the plain and the transposed forms.
func refProduct(env Env, dst []float32, m, k, n int, acc bool, at func(i, p int) float32, bt func(p, j int) float32) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			if acc {
				s = dst[i*n+j]
			}
			for p := 0; p < k; p++ {
				s = FMA(env, at(i, p), bt(p, j), s)
			}
			dst[i*n+j] = s
		}
	}
}

// MatMul sets dst = a·b (a m×k, b k×n, dst m×n, row-major).
func MatMul(env Env, dst, a, b []float32, m, k, n int) {
	checkDims("MatMul", dst, a, b, m, k, n)
	refProduct(env, dst, m, k, n, false, func(i, p int) float32 { return a[i*k+p] }, func(p, j int) float32 { return b[p*n+j] })
}

// MatMulAcc sets dst += a·b, continuing each element's chain.
func MatMulAcc(env Env, dst, a, b []float32, m, k, n int) {
	checkDims("MatMulAcc", dst, a, b, m, k, n)
	refProduct(env, dst, m, k, n, true, func(i, p int) float32 { return a[i*k+p] }, func(p, j int) float32 { return b[p*n+j] })
}

// MatMulTransA sets dst = aᵀ·b, with a stored k×m.
func MatMulTransA(env Env, dst, a, b []float32, m, k, n int) {
	checkDims("MatMulTransA", dst, a, b, m, k, n)
	refProduct(env, dst, m, k, n, false, func(i, p int) float32 { return a[p*m+i] }, func(p, j int) float32 { return b[p*n+j] })
}

// MatMulTransAAcc sets dst += aᵀ·b, with a stored k×m.
func MatMulTransAAcc(env Env, dst, a, b []float32, m, k, n int) {
	checkDims("MatMulTransAAcc", dst, a, b, m, k, n)
	refProduct(env, dst, m, k, n, true, func(i, p int) float32 { return a[p*m+i] }, func(p, j int) float32 { return b[p*n+j] })
}

// MatMulTransB sets dst = a·bᵀ, with b stored n×k.
func MatMulTransB(env Env, dst, a, b []float32, m, k, n int) {
	checkDims("MatMulTransB", dst, a, b, m, k, n)
	refProduct(env, dst, m, k, n, false, func(i, p int) float32 { return a[i*k+p] }, func(p, j int) float32 { return b[j*k+p] })
}

// MatMulTransBAcc sets dst += a·bᵀ, with b stored n×k.
func MatMulTransBAcc(env Env, dst, a, b []float32, m, k, n int) {
	checkDims("MatMulTransBAcc", dst, a, b, m, k, n)
	refProduct(env, dst, m, k, n, true, func(i, p int) float32 { return a[i*k+p] }, func(p, j int) float32 { return b[j*k+p] })
}

// MatMulParallel sets dst = a·b like MatMul; the placeholder runs on one goroutine.
func MatMulParallel(env Env, dst, a, b []float32, m, k, n, threads int) {
	MatMul(env, dst, a, b, m, k, n)
}

// Backend names the backend that serves calls now.
func Backend() string { return "purego" }

// Native reports whether the current backend does env natively.
func Native(env Env) bool { return true }
