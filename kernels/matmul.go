package kernels

// The public matrix products. Every form computes, for each element, the
// canonical chain of float-semantics.md ("The canonical matrix product"):
//
//	acc = +0 (or the existing dst element for the Acc forms)
//	for p = 0 .. k-1: acc = fma(A[i][p], B[p][j], acc), rounded once, then flushed per env
//
// so every backend, blocking and thread count gives the same bits. Which
// backend serves a call is decided in dispatch.go.

import (
	"fmt"
	"math"
	"sync"
)

// MatMul sets dst = a·b: a is m×k, b is k×n, dst is m×n, all row-major.
func MatMul(env Env, dst, a, b []float32, m, k, n int) {
	product("MatMul", env, dst, a, b, m, k, n, false, false, false, 1)
}

// MatMulAcc sets dst += a·b, continuing each element's chain from dst.
func MatMulAcc(env Env, dst, a, b []float32, m, k, n int) {
	product("MatMulAcc", env, dst, a, b, m, k, n, false, false, true, 1)
}

// MatMulTransA sets dst = aᵀ·b, with a stored k×m.
func MatMulTransA(env Env, dst, a, b []float32, m, k, n int) {
	product("MatMulTransA", env, dst, a, b, m, k, n, true, false, false, 1)
}

// MatMulTransAAcc sets dst += aᵀ·b, with a stored k×m.
func MatMulTransAAcc(env Env, dst, a, b []float32, m, k, n int) {
	product("MatMulTransAAcc", env, dst, a, b, m, k, n, true, false, true, 1)
}

// MatMulTransB sets dst = a·bᵀ, with b stored n×k.
func MatMulTransB(env Env, dst, a, b []float32, m, k, n int) {
	product("MatMulTransB", env, dst, a, b, m, k, n, false, true, false, 1)
}

// MatMulTransBAcc sets dst += a·bᵀ, with b stored n×k.
func MatMulTransBAcc(env Env, dst, a, b []float32, m, k, n int) {
	product("MatMulTransBAcc", env, dst, a, b, m, k, n, false, true, true, 1)
}

// MatMulParallel sets dst = a·b like MatMul, splitting the rows (or, for few
// rows, the columns) of dst over up to threads goroutines. Each element's
// chain is unchanged, so the bits do not depend on threads.
func MatMulParallel(env Env, dst, a, b []float32, m, k, n, threads int) {
	product("MatMulParallel", env, dst, a, b, m, k, n, false, false, false, threads)
}

// MatMulTransAParallel is MatMulTransA (dst = aᵀ·b, a stored k×m) split
// over up to threads goroutines like MatMulParallel: the same bits.
func MatMulTransAParallel(env Env, dst, a, b []float32, m, k, n, threads int) {
	product("MatMulTransAParallel", env, dst, a, b, m, k, n, true, false, false, threads)
}

// MatMulTransBParallel is MatMulTransB (dst = a·bᵀ, b stored n×k) split
// over up to threads goroutines like MatMulParallel: the same bits.
func MatMulTransBParallel(env Env, dst, a, b []float32, m, k, n, threads int) {
	product("MatMulTransBParallel", env, dst, a, b, m, k, n, false, true, false, threads)
}

// MatMulPerturbed sets dst = a·w for the k×n matrix w = theta + s·eps
// (row-major, like theta and eps), each element of w the product s·eps
// rounded to float32, then the sum rounded, in IEEE: the same bits as
// AddScaled(IEEE, w, theta, eps, s) followed by MatMulParallel(env, dst,
// a, w, m, k, n, threads). It is how evolution strategies run a perturbed
// member without storing its weights: the SIMD backends compute w while
// they pack the B panels the kernel reads, which saves writing w and
// reading it back.
func MatMulPerturbed(env Env, dst, a, theta, eps []float32, s float32, m, k, n, threads int) {
	if len(eps) < k*n {
		panic(fmt.Sprintf("kernels.MatMulPerturbed: eps holds %d values, k=%d n=%d need %d", len(eps), k, n, k*n))
	}
	checkDims("MatMulPerturbed", env, dst, a, theta, m, k, n)
	clear(dst[:m*n])
	if m == 0 || n == 0 || k == 0 {
		return
	}
	av, bv := matrix{data: a, rs: k, cs: 1}, matrix{data: theta, rs: n, cs: 1, eps: eps, s: s}
	be := serving()
	mode, native := be.mode(env)
	if !native || be.kern == nil {
		// The reference reads B element by element: materialise w.
		w := make([]float32, k*n)
		AddScaled(IEEE, w, theta[:k*n], eps[:k*n], s)
		be, bv = pureGo, matrix{data: w, rs: n, cs: 1}
	}
	run(be, env, mode, dst, av, bv, m, k, n, threads)
}

// MatMulPerturbedPair is MatMulPerturbed for the two members of an
// antithetic pair: dstPlus = aPlus·(theta + s·eps) and dstMinus =
// aMinus·(theta + (−s)·eps), the same bits as the two MatMulPerturbed calls.
// When all rows fit one row block, the SIMD backends pack both members'
// weights in one pass over theta and eps, and when aMinus is aPlus (a
// pair's first layer, on the same inputs) prepare its blocks once; with
// more rows the packing is a small share and the members run one by one.
func MatMulPerturbedPair(env Env, dstPlus, dstMinus, aPlus, aMinus, theta, eps []float32, s float32, m, k, n int) {
	if len(eps) < k*n {
		panic(fmt.Sprintf("kernels.MatMulPerturbedPair: eps holds %d values, k=%d n=%d need %d", len(eps), k, n, k*n))
	}
	checkDims("MatMulPerturbedPair", env, dstPlus, aPlus, theta, m, k, n)
	checkDims("MatMulPerturbedPair", env, dstMinus, aMinus, theta, m, k, n)
	be := serving()
	mode, native := be.mode(env)
	if !native || be.kern == nil || m == 0 || n == 0 || k == 0 || m > be.kern.mc {
		MatMulPerturbed(env, dstPlus, aPlus, theta, eps, s, m, k, n, 1)
		MatMulPerturbed(env, dstMinus, aMinus, theta, eps, -s, m, k, n, 1)
		return
	}
	clear(dstPlus[:m*n])
	clear(dstMinus[:m*n])
	be.kern.perturbedOneBlock(mode, dstPlus, dstMinus, n, matrix{data: aPlus, rs: k, cs: 1}, matrix{data: aMinus, rs: k, cs: 1},
		matrix{data: theta, rs: n, cs: 1, eps: eps, s: s}, m, k, n)
}

// matrix is a read-only strided view of a matrix operand: element (i, j) is
// data[i*rs + j*cs]. Row-major storage has cs = 1; a transposed operand has
// rs = 1.
type matrix struct {
	data   []float32
	rs, cs int
	// eps, when not nil, perturbs a row-major B operand (MatMulPerturbed):
	// element (i, j) is data[x] + s·eps[x], x = i*rs + j, the product
	// rounded before the add, in IEEE. Only packB reads it.
	eps []float32
	s   float32
}

func (x matrix) at(i, j int) float32 { return x.data[i*x.rs+j*x.cs] }

// sub returns the view whose element (0, 0) is x's element (i, j).
func (x matrix) sub(i, j int) matrix {
	off := i*x.rs + j*x.cs
	y := matrix{data: x.data[off:], rs: x.rs, cs: x.cs, s: x.s}
	if x.eps != nil {
		y.eps = x.eps[off:]
	}
	return y
}

// perturbRow writes theta[j] + s·eps[j] for j < len(dst) to dst, the
// product rounded first (the explicit conversion forbids fusing it into an
// FMA), in IEEE, which is the Go environment.
func perturbRow(dst, theta, eps []float32, s float32) {
	theta, eps = theta[:len(dst)], eps[:len(dst)]
	for j := range dst {
		dst[j] = theta[j] + float32(s*eps[j])
	}
}

func checkDims(op string, env Env, dst, a, b []float32, m, k, n int) {
	if !env.Valid() {
		panic(fmt.Sprintf("kernels.%s: invalid denormal environment %v", op, env))
	}
	if m < 0 || k < 0 || n < 0 {
		panic(fmt.Sprintf("kernels.%s: negative dimension m=%d k=%d n=%d", op, m, k, n))
	}
	if overflows(m, k) || overflows(k, n) || overflows(m, n) {
		panic(fmt.Sprintf("kernels.%s: dimensions m=%d k=%d n=%d overflow int", op, m, k, n))
	}
	if len(a) < m*k || len(b) < k*n || len(dst) < m*n {
		panic(fmt.Sprintf("kernels.%s: slices too short for m=%d k=%d n=%d: len(a)=%d (want %d), len(b)=%d (want %d), len(dst)=%d (want %d)",
			op, m, k, n, len(a), m*k, len(b), k*n, len(dst), m*n))
	}
}

// overflows reports whether x*y, both non-negative, exceeds the int range:
// a wrapped size could pass the length checks.
func overflows(x, y int) bool { return x != 0 && y > math.MaxInt/x }

func product(op string, env Env, dst, a, b []float32, m, k, n int, transA, transB, acc bool, threads int) {
	checkDims(op, env, dst, a, b, m, k, n)
	av := matrix{data: a, rs: k, cs: 1}
	if transA {
		av = matrix{data: a, rs: 1, cs: m}
	}
	bv := matrix{data: b, rs: n, cs: 1}
	if transB {
		bv = matrix{data: b, rs: 1, cs: k}
	}
	if !acc {
		// The chains start from +0.
		clear(dst[:m*n])
	}
	if m == 0 || n == 0 || k == 0 {
		return
	}
	serving().run(env, dst, av, bv, m, k, n, threads)
}

// run continues the chains of dst (m×n, row-major) with a·b on be, or on
// the reference when be cannot do env natively.
func (be *backend) run(env Env, dst []float32, av, bv matrix, m, k, n, threads int) {
	mode, native := be.mode(env)
	if !native {
		be = pureGo
	}
	run(be, env, mode, dst, av, bv, m, k, n, threads)
}

// run continues the chains of dst (m×n, row-major) with av·bv on be, on up
// to threads goroutines.
func run(be *backend, env Env, mode uint32, dst []float32, av, bv matrix, m, k, n, threads int) {
	// Below about 2^18 fused multiply-adds per goroutine the start-up
	// costs more than it saves.
	threads = min(threads, max(1, m*n*k/(1<<18)))
	if threads <= 1 {
		be.product(env, mode, dst, n, av, bv, m, k, n)
		return
	}
	parallelProduct(be, env, mode, dst, av, bv, m, k, n, threads)
}

// parallelProduct splits the rows in multiples of the tile height, or the
// columns in multiples of the tile width when there are too few rows. It is
// its own function so that the serial path's operands do not escape into
// the goroutines' closures (an allocation per call).
func parallelProduct(be *backend, env Env, mode uint32, dst []float32, av, bv matrix, m, k, n, threads int) {
	mr, nr := be.tile()
	var wg sync.WaitGroup
	if m >= threads*mr {
		step := (m + threads - 1) / threads
		step = (step + mr - 1) / mr * mr
		for i0 := 0; i0 < m; i0 += step {
			rows := min(step, m-i0)
			wg.Go(func() { be.product(env, mode, dst[i0*n:], n, av.sub(i0, 0), bv, rows, k, n) })
		}
	} else {
		step := (n + threads - 1) / threads
		step = (step + nr - 1) / nr * nr
		for j0 := 0; j0 < n; j0 += step {
			cols := min(step, n-j0)
			wg.Go(func() { be.product(env, mode, dst[j0:], n, av, bv.sub(0, j0), m, k, cols) })
		}
	}
	wg.Wait()
}
