package kernels

// The known-answer self-test. A SIMD backend that gives wrong bits on a CPU
// nobody here has tested (a microcode or emulator quirk, an OS that loses
// vector state, a broken build) must not serve silently: before it serves
// its first call in a process (dispatch.go, serving), it runs a few
// products and elementwise passes in every environment it claims natively,
// and their bits must hash to the answers below, which TestSelfTestAnswers
// recomputes with the scalar reference.
//
// The cases hit full tiles and row and column tails of every tile (10×32,
// 6×16, 8×8), the small-shape kernels that read A and B in place (short
// chains, at most 4 columns), a K-block resume (k = 260 > kc), both B
// packers and the perturbed ones (θ + s·ε, one member and a pair), A read by
// columns, a C continued from stored sums, inputs in the subnormal band
// and ±0, and a product on the tininess boundary (FTZ keeps 2^-126, ARM_FZ
// flushes it).

import (
	"errors"
	"fmt"
	"math"
)

// knownAnswer is one self-test case.
type knownAnswer struct {
	name string // the public operation and its shape, for messages
	// elementwise: the case runs only where the backend has elementwise
	// kernels for the environment (elsewhere the portable loops serve,
	// whatever the backend).
	elementwise bool
	// run computes the case on be in env; ref computes it with the scalar
	// reference. Both return the m×n (or n) output, row-major.
	run func(be *backend, env Env, in *selfTestInputs) []float32
	ref func(env Env, in *selfTestInputs) []float32
	n   int // output columns, to name an element as (row, column)
}

// selfTestInputs are the cases' operands, made by selfTestOperands.
type selfTestInputs struct {
	a, b, c []float32 // products: A and B (largest case), prefilled C
	x, y    []float32 // elementwise: rows and bias, x + s·y operands
}

// The product cases' shapes.
const (
	stM, stN     = 13, 37 // 10+3, 2·6+1, 8+5 rows; 32+5, 2·16+5, 4·8+5 columns
	stK, stKLong = 7, 260 // a short chain; two K-blocks for kc = 192 and 256
	stKMid       = 20     // past the short-chain kernel, one K-block
	stNarrow     = 3      // columns: the narrow kernel's masked lanes
	stRows       = 3      // elementwise: rows of stN columns (4 vectors of 8 and a tail)
	stScaleExp   = -1     // BiasAddScale's scaling: sums near 2^-125 land on 2^-126
	stAddScale   = 0.375  // AddScaled's s: products round, some into the band
	stWSum       = 100    // WeightedSum's length: 12 vectors of 8 and a tail
)

// selfTestCases: products in three forms, then the elementwise passes.
var selfTestCases = []knownAnswer{
	productCase("MatMul", false, false, false, stK, stN), // amd64: the short-chain kernel (k ≤ 8)
	productCase("MatMul", false, false, false, stKMid, stN),
	productCase("MatMul", false, false, false, stKMid, stNarrow), // amd64: the narrow kernel (n ≤ 4)
	productCase("MatMulTransA", true, false, false, stK, stN),
	productCase("MatMulTransBAcc", false, true, true, stKLong, stN),
	perturbedCase(false),
	perturbedCase(true),
	{
		name: fmt.Sprintf("BiasAdd %d×%d", stRows, stN), elementwise: true, n: stN,
		run: func(be *backend, env Env, in *selfTestInputs) []float32 {
			dst := make([]float32, stRows*stN)
			be.biasAddRows(env, dst, in.x, in.y, stRows, stN)
			return dst
		},
		ref: func(env Env, in *selfTestInputs) []float32 {
			dst := make([]float32, stRows*stN)
			for i := range dst {
				dst[i] = Add(env, in.x[i], in.y[i%stN])
			}
			return dst
		},
	},
	{
		name: fmt.Sprintf("BiasAddScale %d×%d·2^%d", stRows, stN, stScaleExp), elementwise: true, n: stN,
		run: func(be *backend, env Env, in *selfTestInputs) []float32 {
			dst := make([]float32, stRows*stN)
			be.biasAddScaleRows(env, dst, in.x, in.y, stRows, stN, stScaleExp)
			return dst
		},
		ref: func(env Env, in *selfTestInputs) []float32 {
			dst := make([]float32, stRows*stN)
			for i := range dst {
				dst[i] = Mul(env, Add(env, in.x[i], in.y[i%stN]), pow2(stScaleExp))
			}
			return dst
		},
	},
	{
		name: fmt.Sprintf("AddScaled %d", stRows*stN), elementwise: true, n: stRows * stN,
		run: func(be *backend, env Env, in *selfTestInputs) []float32 {
			dst := make([]float32, stRows*stN)
			be.addScaledTo(env, dst, in.x, in.y, stAddScale)
			return dst
		},
		ref: func(env Env, in *selfTestInputs) []float32 {
			dst := make([]float32, stRows*stN)
			for i := range dst {
				dst[i] = Add(env, in.x[i], Mul(env, stAddScale, in.y[i]))
			}
			return dst
		},
	},
	{
		// Nine noise slices: one full group of weightedSumGroup and a
		// group of one, each slice a shifted window of x and y.
		name: fmt.Sprintf("WeightedSum %d, 9 slices", stWSum), elementwise: true, n: stWSum,
		run: func(be *backend, env Env, in *selfTestInputs) []float32 {
			acc, eps, w := weightedSumOperands(in)
			be.weightedSumTo(env, acc, eps, w)
			return acc
		},
		ref: func(env Env, in *selfTestInputs) []float32 {
			acc, eps, w := weightedSumOperands(in)
			for p := range eps {
				for i := range acc {
					acc[i] = Add(env, acc[i], Mul(env, w[p], eps[p][i]))
				}
			}
			return acc
		},
	},
}

// productCase is the public product form named form on stM×k×n.
func productCase(form string, transA, transB, acc bool, k, n int) knownAnswer {
	m := stM
	views := func(in *selfTestInputs) (av, bv matrix) {
		av, bv = matrix{data: in.a, rs: k, cs: 1}, matrix{data: in.b, rs: n, cs: 1}
		if transA {
			av = matrix{data: in.a, rs: 1, cs: m}
		}
		if transB {
			bv = matrix{data: in.b, rs: 1, cs: k}
		}
		return av, bv
	}
	start := func(in *selfTestInputs) []float32 {
		dst := make([]float32, m*n)
		if acc {
			copy(dst, in.c)
		}
		return dst
	}
	return knownAnswer{
		name: fmt.Sprintf("%s %d×%d×%d", form, m, k, n), n: n,
		run: func(be *backend, env Env, in *selfTestInputs) []float32 {
			dst := start(in)
			av, bv := views(in)
			be.run(env, dst, av, bv, m, k, n, 1)
			return dst
		},
		ref: func(env Env, in *selfTestInputs) []float32 {
			dst := start(in)
			av, bv := views(in)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					s := dst[i*n+j]
					for p := 0; p < k; p++ {
						s = FMA(env, av.at(i, p), bv.at(p, j), s)
					}
					dst[i*n+j] = s
				}
			}
			return dst
		},
	}
}

// perturbedCase is MatMulPerturbed (or, pair, MatMulPerturbedPair with two
// different left operands) on stM×stKMid×stN: the weights θ + s·ε are
// formed while the B panels are packed, in IEEE, then the product runs in
// the environment. θ and ε are B's first two stKMid×stN blocks.
func perturbedCase(pair bool) knownAnswer {
	m, k, n := stM, stKMid, stN
	name := fmt.Sprintf("MatMulPerturbed %d×%d×%d", m, k, n)
	rows := m
	if pair {
		name, rows = fmt.Sprintf("MatMulPerturbedPair %d×%d×%d", m, k, n), 2*m
	}
	operands := func(in *selfTestInputs) (a1, a2, theta, eps []float32) {
		return in.a[:m*k], in.a[m*k : 2*m*k], in.b[:k*n], in.b[k*n : 2*k*n]
	}
	return knownAnswer{
		name: name, n: n,
		run: func(be *backend, env Env, in *selfTestInputs) []float32 {
			a1, a2, theta, eps := operands(in)
			dst := make([]float32, rows*n)
			bv := matrix{data: theta, rs: n, cs: 1, eps: eps, s: stAddScale}
			if !pair || be.kern == nil {
				be.run(env, dst[:m*n], matrix{data: a1, rs: k, cs: 1}, bv, m, k, n, 1)
				if pair {
					bv.s = -stAddScale
					be.run(env, dst[m*n:], matrix{data: a2, rs: k, cs: 1}, bv, m, k, n, 1)
				}
				return dst
			}
			mode, _ := be.mode(env)
			be.kern.perturbedOneBlock(mode, dst[:m*n], dst[m*n:], n, matrix{data: a1, rs: k, cs: 1}, matrix{data: a2, rs: k, cs: 1}, bv, m, k, n)
			return dst
		},
		ref: func(env Env, in *selfTestInputs) []float32 {
			a1, a2, theta, eps := operands(in)
			dst := make([]float32, rows*n)
			for member, s := range []float32{stAddScale, -stAddScale}[:rows/m] {
				a := [][]float32{a1, a2}[member]
				for i := 0; i < m; i++ {
					for j := 0; j < n; j++ {
						var sum float32
						for p := 0; p < k; p++ {
							w := Add(IEEE, theta[p*n+j], Mul(IEEE, s, eps[p*n+j]))
							sum = FMA(env, a[i*k+p], w, sum)
						}
						dst[(member*m+i)*n+j] = sum
					}
				}
			}
			return dst
		},
	}
}

// weightedSumOperands are WeightedSum's: acc from x (near 2^-125), nine
// slices of y (near 2^-126) at shifts of 1, weights of a few significant
// bits with both signs.
func weightedSumOperands(in *selfTestInputs) (acc []float32, eps [][]float32, w []float32) {
	acc = append([]float32(nil), in.x[:stWSum]...)
	for p := 0; p < 9; p++ {
		eps = append(eps, in.y[p:p+stWSum])
		w = append(w, float32(p%3-1)*0.375+float32(p)*0.0625)
	}
	return acc, eps, w
}

// selfTestOperands makes the operands: values near 2^-63 (A, B: products
// near 2^-126), 2^-126 (C, AddScaled) and 2^-125 (elementwise rows), with
// ±0, subnormals and boundary significands mixed in. Element (0, 0) of A
// and B make the tininess boundary product (1-2^-46)·2^-126 of ftzcheck,
// alone in its chain for the first row: A's first row is zero beyond it.
func selfTestOperands() *selfTestInputs {
	state := uint64(0x5e1f7e57)
	next := func() uint64 { // SplitMix64
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		return z ^ z>>31
	}
	gen := func(n, exp int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = selfTestValue(next(), exp)
		}
		return x
	}
	in := &selfTestInputs{
		a: gen(stM*stKLong, -63), b: gen(stKLong*stN, -63), c: gen(stM*stN, -126),
		x: gen(stRows*stN, -125), y: gen(stRows*stN, -126),
	}
	// Row 0 of A (as MatMul reads it: the first stK values) is the
	// boundary factor then zeros; B's element (0, 0) the other factor.
	clear(in.a[:stK])
	in.a[0], in.b[0] = math.Float32frombits(0x3f000001), math.Float32frombits(0x00fffffe)
	return in
}

// selfTestValue turns 64 random bits into a float32 near 2^exp.
func selfTestValue(r uint64, exp int) float32 {
	sign := uint32(r>>63) << 31
	sig := uint32(r) & 0x7fffff
	e := uint32(max(1, min(254, exp+127+int((r>>32)%5)-2)))
	switch (r >> 40) % 16 {
	case 0:
		return math.Float32frombits(sign) // ±0
	case 1, 2:
		return math.Float32frombits(sign | sig) // subnormal (or ±0)
	case 3:
		return math.Float32frombits(sign | e<<23 | []uint32{0, 1, 0x7fffff, 0x7ffffe}[(r>>48)%4])
	}
	return math.Float32frombits(sign | e<<23 | sig)
}

// selfTestHash is FNV-1a over the bits of out.
func selfTestHash(out []float32) uint64 {
	h := uint64(14695981039346656037)
	for _, v := range out {
		b := math.Float32bits(v)
		for range 4 {
			h = (h ^ uint64(b&0xff)) * 1099511628211
			b >>= 8
		}
	}
	return h
}

// selfTestAnswers[i][env] is selfTestHash of case i in env, from the
// reference (TestSelfTestAnswers recomputes and prints them).
var selfTestAnswers = [][5]uint64{
	//  IEEE               FTZ                 DAZ                 FTZ_DAZ             ARM_FZ
	{0x9c81874b7eae1c15, 0xb23ed6046b40c528, 0x356711fa774180b4, 0xa40d6e4d32519628, 0x4e49e5c1fc6154a8}, // MatMul 13×7×37
	{0xabe4578230d3afbc, 0x69b4030bd5987c74, 0x8bcdb3ee286a9a08, 0x69b4030bd5987c74, 0x16905686b7771551}, // MatMul 13×20×37
	{0xdb0dca26be267053, 0x2db2ac00008826f7, 0x23891f554537feb0, 0x4c7c7546ab60faf7, 0xc0d5dd8cc88d26a8}, // MatMul 13×20×3
	{0xd1679ab4157fe39e, 0x159c572eaaebb7ca, 0x8513242723ad3f53, 0xb9b15d652519854a, 0xcfad6d84d0157572}, // MatMulTransA 13×7×37
	{0x3014625b30cf6045, 0xab7295b0394dc8db, 0x166c205ecbcf4f0f, 0x3b1fb1ec6a7331b7, 0xc284fcd1380a7baa}, // MatMulTransBAcc 13×260×37
	{0xa199f7116ccb5814, 0xc083cb2cd3d2f3e2, 0x100760a2f35f7f70, 0xc083cb2cd3d2f3e2, 0xc083cb2cd3d2f3e2}, // MatMulPerturbed 13×20×37
	{0x2d914def370979d4, 0x413660682d4d66f5, 0x806012c1ef1fa89d, 0x413660682d4d66f5, 0x413660682d4d66f5}, // MatMulPerturbedPair 13×20×37
	{0x20a34cd8b12124f3, 0x1fed780cadd69ea4, 0x9405c129735f4f70, 0x98c0f0088a6061ab, 0x98c0f0088a6061ab}, // BiasAdd 3×37
	{0xbceb763b9c232a95, 0x4e5e528a42da9928, 0x868c72f88e6ea692, 0x8242d80aeaa43016, 0x8242d80aeaa43016}, // BiasAddScale 3×37·2^-1
	{0x0ba95309173c9ef5, 0x96cc56c647b35933, 0x11bccef54e505eb1, 0x37263734f8e48261, 0x37263734f8e48261}, // AddScaled 111
	{0x85de90491ed733d2, 0xf153c8bf6628a0af, 0x1a391e590c34643b, 0xcd66d746a4399c16, 0xcd66d746a4399c16}, // WeightedSum 100, 9 slices
}

// selfTest returns the outcome of be's self-test, running it the first
// time. The purego backend is the reference itself and always passes.
func (be *backend) selfTest() error {
	if be.kern == nil && be.biasAdd == nil {
		return nil
	}
	be.checked.Do(func() { be.checkErr = be.runSelfTest() })
	return be.checkErr
}

// runSelfTest runs every case in every environment be claims natively and
// returns the first mismatch, naming the backend, the environment, the case
// and the first element that differs from the reference.
func (be *backend) runSelfTest() error {
	in := selfTestOperands()
	for _, env := range Envs {
		if _, ok := be.mode(env); !ok {
			continue // the reference serves env on this backend
		}
		for i, c := range selfTestCases {
			if _, ok := be.elementwiseMode(env); c.elementwise && !ok {
				continue
			}
			got := c.run(be, env, in)
			if selfTestHash(got) == selfTestAnswers[i][env] {
				continue
			}
			want := c.ref(env, in)
			at := "a result that hashes differently" // the stored answer is stale (TestSelfTestAnswers fails)
			for j := range want {
				if !SameResult(got[j], want[j]) {
					at = fmt.Sprintf("element (%d, %d) is %#08x, reference %#08x", j/c.n, j%c.n, math.Float32bits(got[j]), math.Float32bits(want[j]))
					break
				}
			}
			return fmt.Errorf("kernels: self-test: backend %s differs from the reference in %v %s: %s", be.name, env, c.name, at)
		}
	}
	return nil
}

// SelfTest runs the known-answer self-test on every SIMD backend this
// machine can run: small products and elementwise passes (full tiles and
// tails, a K-block resume, subnormal-band inputs, ±0) in every environment
// each backend claims natively, compared bit for bit with the reference.
// It returns nil when all agree, else an error naming each failing
// backend, environment and case. Each backend's test runs once per process
// (the first product runs it on the serving backend anyway) and costs
// well under a millisecond.
func SelfTest() error {
	var errs []error
	for _, be := range availableBackends() {
		if err := be.selfTest(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
