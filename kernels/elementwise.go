package kernels

import (
	"fmt"
	"math"
)

// The elementwise ops of a network layer: a bias added to every row of a
// matrix, optionally followed by a scaling by a power of two, in any
// denormal environment, bit-identical to Add and Mul. The amd64 SIMD
// backends run them in generated assembly (elementwise_gen_amd64.s) under
// the environment's MXCSR; everything else runs the exact portable loops
// below, which apply the environment around one native IEEE operation
// instead of calling the scalar reference per element.
//
// Why the portable loops are exact:
//   - DAZ: an input whose exponent field is zero (subnormal or zero) is read
//     as a zero of the same sign.
//   - Add: a tiny exact sum is always representable (both operands are
//     multiples of 2^-149), so the native sum is exact whenever it is tiny,
//     x86 and Arm tininess agree, and flushing means "a result with a zero
//     exponent field becomes a zero of its sign".
//   - Scaling by 2^e with 2^e a normal float32: the exact product x·2^e is
//     tiny iff |x| < 2^(-126-e). That is decided from the input, because a
//     native IEEE multiply could round an exact result just below 2^-126 up
//     to 2^-126 (x86 FTZ flushes it: tininess is decided on the value
//     rounded with unbounded exponent, which here is the exact value). A
//     product that is not tiny is exact (or overflows natively).

const (
	expMask       = 0x7f800000
	signMask      = 0x80000000
	minNormalBits = 0x00800000 // 2^-126, the smallest normal float32
)

// elementwiseBlock bounds one assembly call (about 64 KiB of each operand),
// so that the garbage collector is never held up for long.
const elementwiseBlock = 1 << 14

// BiasAdd writes src + bias in env to dst: bias (len cols) is added to each
// of the rows rows of src (rows×cols, row-major). dst may be src.
func BiasAdd(env Env, dst, src, bias []float32, rows, cols int) {
	checkRows("BiasAdd", env, dst, src, bias, rows, cols)
	if rows == 0 || cols == 0 {
		return
	}
	serving().biasAddRows(env, dst, src, bias, rows, cols)
}

// biasAddRows is BiasAdd on be, its arguments checked and not empty.
func (be *backend) biasAddRows(env Env, dst, src, bias []float32, rows, cols int) {
	if mode, ok := be.elementwiseMode(env); ok {
		for r, step := 0, max(1, elementwiseBlock/cols); r < rows; r += step {
			n := min(step, rows-r)
			be.biasAdd(&dst[r*cols], &src[r*cols], &bias[0], n, cols, mode)
		}
		return
	}
	biasAddGo(env, dst, src, bias, rows, cols)
}

// BiasAddScale writes (src + bias)·2^e in env to dst, bias (len cols) added
// to each of the rows rows of src: the same bits as BiasAdd followed by
// Scale, in one pass. The sum is rounded (and flushed) before it is
// scaled; -126 <= e <= 127. dst may be src.
func BiasAddScale(env Env, dst, src, bias []float32, rows, cols, e int) {
	checkRows("BiasAddScale", env, dst, src, bias, rows, cols)
	pow2(e) // checks e
	if rows == 0 || cols == 0 {
		return
	}
	serving().biasAddScaleRows(env, dst, src, bias, rows, cols, e)
}

// biasAddScaleRows is BiasAddScale on be, its arguments checked and not
// empty.
func (be *backend) biasAddScaleRows(env Env, dst, src, bias []float32, rows, cols, e int) {
	if mode, ok := be.elementwiseMode(env); ok {
		s := pow2(e)
		for r, step := 0, max(1, elementwiseBlock/cols); r < rows; r += step {
			n := min(step, rows-r)
			be.biasAddScale(&dst[r*cols], &src[r*cols], &bias[0], n, cols, s, mode)
		}
		return
	}
	biasAddScaleGo(env, dst, src, bias, rows, cols, e)
}

// AddScaled writes x + s·y in env to dst, element by element: the product
// rounded, then the sum, never fused into one FMA. dst may be x or y; x
// and y must hold len(dst) values. The portable path outside IEEE is the
// scalar reference (nothing fast needs it).
func AddScaled(env Env, dst, x, y []float32, s float32) {
	if !env.Valid() {
		panic(fmt.Sprintf("kernels.AddScaled: invalid denormal environment %v", env))
	}
	if len(x) < len(dst) || len(y) < len(dst) {
		panic(fmt.Sprintf("kernels.AddScaled: len(dst)=%d, but len(x)=%d and len(y)=%d", len(dst), len(x), len(y)))
	}
	if len(dst) == 0 {
		return
	}
	serving().addScaledTo(env, dst, x, y, s)
}

// addScaledTo is AddScaled on be, its arguments checked and dst not empty.
func (be *backend) addScaledTo(env Env, dst, x, y []float32, s float32) {
	if mode, ok := be.elementwiseMode(env); ok {
		for lo := 0; lo < len(dst); lo += 4 * elementwiseBlock {
			hi := min(lo+4*elementwiseBlock, len(dst))
			be.addScaled(&dst[lo], &x[lo], &y[lo], hi-lo, s, mode)
		}
		return
	}
	x, y = x[:len(dst)], y[:len(dst)]
	if env == IEEE {
		for i := range dst {
			dst[i] = x[i] + float32(s*y[i])
		}
		return
	}
	for i := range dst {
		dst[i] = Add(env, x[i], Mul(env, s, y[i]))
	}
}

// AdamUpdate applies one step of Adam to the parameters p, with gradient
// g and moments m and v (all updated in place, all of len(p)), in IEEE
// arithmetic, element by element:
//
//	m = b1·m + c1·g
//	v = b2·v + c2·(g·g)
//	p = p − decay·p                     (only when decay ≠ 0)
//	p = p − (step·m) / (sqrt(v) + eps)
//
// Every product, quotient, square root and sum is rounded on its own,
// never fused, so the result is the same bits on every backend: the
// amd64 SIMD backends run it in generated AVX code, the others in the
// loop below.
func AdamUpdate(p, g, m, v []float32, b1, b2, c1, c2, eps, decay, step float32) {
	n := len(p)
	if len(g) < n || len(m) < n || len(v) < n {
		panic(fmt.Sprintf("kernels.AdamUpdate: len(p)=%d, but len(g)=%d, len(m)=%d, len(v)=%d", n, len(g), len(m), len(v)))
	}
	if n == 0 {
		return
	}
	if be := serving(); be.adam != nil {
		// Blocks bound each assembly call, as for the elementwise ops.
		for lo := 0; lo < n; lo += 4 * elementwiseBlock {
			hi := min(lo+4*elementwiseBlock, n)
			if decay != 0 {
				be.adamDecay(&p[lo], &g[lo], &m[lo], &v[lo], hi-lo, b1, b2, c1, c2, eps, decay, step)
			} else {
				be.adam(&p[lo], &g[lo], &m[lo], &v[lo], hi-lo, b1, b2, c1, c2, eps, step)
			}
		}
		return
	}
	adamGo(p, g[:n], m[:n], v[:n], b1, b2, c1, c2, eps, decay, step)
}

// adamGo is AdamUpdate's portable loop: an explicit conversion around
// every product that meets an add, so no compiler fuses it.
func adamGo(p, g, m, v []float32, b1, b2, c1, c2, eps, decay, step float32) {
	for i, gi := range g {
		mi := float32(b1*m[i]) + float32(c1*gi)
		vi := float32(b2*v[i]) + float32(c2*float32(gi*gi))
		m[i], v[i] = mi, vi
		pi := p[i]
		if decay != 0 {
			pi -= float32(decay * pi)
		}
		denom := float32(math.Sqrt(float64(vi))) + eps
		p[i] = pi - float32(step*mi)/denom
	}
}

// WeightedSum adds w[p]·eps[p] to acc for p = 0, 1, ... in that order,
// element by element in env: acc[i] = acc[i] + w[p]·eps[p][i], each product
// rounded, then the sum, never fused: the bits of AddScaled(env, acc, acc,
// eps[p], w[p]) for each p in turn. Evolution strategies sum the pairs'
// weighted noise with it. The SIMD backends fold weightedSumGroup pairs
// into each pass over a block of acc, holding the block in registers while
// the noise streams past; the others run AddScaled pair by pair. Every
// eps[p] holds at least len(acc) values; len(w) = len(eps).
func WeightedSum(env Env, acc []float32, eps [][]float32, w []float32) {
	if !env.Valid() {
		panic(fmt.Sprintf("kernels.WeightedSum: invalid denormal environment %v", env))
	}
	if len(w) != len(eps) {
		panic(fmt.Sprintf("kernels.WeightedSum: %d weights for %d noise slices", len(w), len(eps)))
	}
	for p, e := range eps {
		if len(e) < len(acc) {
			panic(fmt.Sprintf("kernels.WeightedSum: noise slice %d holds %d values, acc %d", p, len(e), len(acc)))
		}
	}
	if len(acc) == 0 || len(eps) == 0 {
		return
	}
	serving().weightedSumTo(env, acc, eps, w)
}

func (be *backend) weightedSumTo(env Env, acc []float32, eps [][]float32, w []float32) {
	mode, ok := be.elementwiseMode(env)
	if !ok || be.weightedSum == nil {
		for p, e := range eps {
			be.addScaledTo(env, acc, acc, e, w[p])
		}
		return
	}
	var ptrs [weightedSumGroup]*float32
	for lo := 0; lo < len(acc); lo += weightedSumBlock {
		hi := min(lo+weightedSumBlock, len(acc))
		for p0 := 0; p0 < len(eps); p0 += weightedSumGroup {
			g := min(weightedSumGroup, len(eps)-p0)
			for q := 0; q < g; q++ {
				ptrs[q] = &eps[p0+q][lo]
			}
			be.weightedSum(&acc[lo], hi-lo, &ptrs[0], &w[p0], g, mode)
		}
	}
}

// weightedSumGroup is the number of noise streams one pass of WeightedSum
// reads at once, and weightedSumBlock the elements of acc it covers: one
// call then does about 32k multiply-adds, and the block (16 KiB) stays in L1
// between the groups of pairs.
const (
	weightedSumGroup = 8
	weightedSumBlock = 4096
)

// Scale writes src·2^e in env to dst (which may alias src); -126 <= e <= 127.
// It is not vectorised: the network scales bias vectors with it, not
// activations.
func Scale(env Env, dst, src []float32, e int) {
	if !env.Valid() {
		panic(fmt.Sprintf("kernels.Scale: invalid denormal environment %v", env))
	}
	if len(dst) < len(src) {
		panic(fmt.Sprintf("kernels.Scale: dst holds %d values, src %d", len(dst), len(src)))
	}
	s := pow2(e)
	dst = dst[:len(src)]
	daz, ftz := env.ZeroesInputs(), env.FlushesOutputs()
	tinyBits := tinyProductBelow(e) // |x| bits below this make x·2^e tiny
	for i, v := range src {
		b := math.Float32bits(v)
		mag := b &^ signMask
		switch {
		case daz && mag&expMask == 0, ftz && mag != 0 && mag < tinyBits:
			dst[i] = math.Float32frombits(b & signMask)
		default:
			dst[i] = v * s
		}
	}
}

func checkRows(op string, env Env, dst, src, bias []float32, rows, cols int) {
	if !env.Valid() {
		panic(fmt.Sprintf("kernels.%s: invalid denormal environment %v", op, env))
	}
	if rows < 0 || cols < 0 || overflows(rows, cols) {
		panic(fmt.Sprintf("kernels.%s: bad dimensions rows=%d cols=%d", op, rows, cols))
	}
	if len(src) < rows*cols || len(dst) < rows*cols || len(bias) < cols {
		panic(fmt.Sprintf("kernels.%s: slices too short for rows=%d cols=%d: len(dst)=%d len(src)=%d (want %d), len(bias)=%d (want %d)",
			op, rows, cols, len(dst), len(src), rows*cols, len(bias), cols))
	}
}

// pow2 returns 2^e as a float32; -126 <= e <= 127.
func pow2(e int) float32 {
	if e < -126 || e > 127 {
		panic(fmt.Sprintf("kernels: power-of-two scaling 2^%d needs -126 <= e <= 127", e))
	}
	return math.Float32frombits(uint32(e+127) << 23)
}

// tinyProductBelow returns the float32 bits of 2^(-126-e): inputs x with
// |x| below it make the exact x·2^e tiny (0 when no float32 does).
func tinyProductBelow(e int) uint32 {
	switch t := -126 - e; {
	case t >= -126:
		return uint32(t+127) << 23
	case t >= -149:
		return 1 << uint(t+149)
	default:
		return 0
	}
}

// zeroIfBelow returns the float32 bits b, or a zero of b's sign when |b|'s
// bits are below below (0: never), without a branch: for non-negative
// magnitudes bit order is value order, and the difference's sign bit
// spreads into the mask.
func zeroIfBelow(b, below uint32) uint32 {
	mag := b &^ signMask
	tiny := uint32(int32(mag-below) >> 31) // all ones iff mag < below
	return b &^ (tiny &^ signMask)
}

// biasAsRead returns the bias as DAZ reads it: itself when it has no
// subnormal (the usual case, no copy), else a copy with each subnormal
// replaced by a zero of its sign, so that the loops apply DAZ to the row
// values only.
func biasAsRead(bias []float32) []float32 {
	if !anySubnormal(bias) {
		return bias
	}
	read := make([]float32, len(bias))
	for j, b := range bias {
		read[j] = daz(DAZ, b)
	}
	return read
}

// anySubnormal reports whether DAZ would change any of v.
func anySubnormal(v []float32) bool {
	for _, x := range v {
		if b := math.Float32bits(x); b&expMask == 0 && b&^signMask != 0 {
			return true
		}
	}
	return false
}

// biasAddGo is BiasAdd's portable loop.
func biasAddGo(env Env, dst, src, bias []float32, rows, cols int) {
	src, dst, bias = src[:rows*cols], dst[:rows*cols], bias[:cols]
	daz, ftz := env.ZeroesInputs(), env.FlushesOutputs()
	if daz {
		bias = biasAsRead(bias)
	}
	var readBelow, flushBelow uint32 // inputs, sums with |bits| below these become zeros
	if daz {
		readBelow = minNormalBits
	}
	if ftz {
		flushBelow = minNormalBits
	}
	for r := 0; r < rows; r++ {
		in, out := src[r*cols:r*cols+cols], dst[r*cols:r*cols+cols]
		if !daz && !ftz {
			in, out = in[:len(bias)], out[:len(bias)]
			for j, b := range bias {
				out[j] = in[j] + b
			}
			continue
		}
		addRowFlushing(out, in, bias, readBelow, flushBelow)
	}
}

// addRowFlushing is biasAddGo's loop over one row when the bias reads as
// itself. A function of its own so that its few values stay in registers.
func addRowFlushing(out, in, bias []float32, readBelow, flushBelow uint32) {
	in, out = in[:len(bias)], out[:len(bias)]
	for j, b := range bias {
		a := math.Float32frombits(zeroIfBelow(math.Float32bits(in[j]), readBelow))
		out[j] = math.Float32frombits(zeroIfBelow(math.Float32bits(a+b), flushBelow))
	}
}

// biasAddScaleGo is BiasAddScale's portable loop.
//
// Why one threshold is exact: the add's result is flushed (FTZ) or read as
// zero by the scaling (DAZ) when its exponent field is zero, and the
// scaling flushes (FTZ) an input whose exact product is tiny; either way
// the output is a zero of the sum's sign, and a zero sum scales to itself.
// So the output is a zero of the sum's sign when |sum| is below the larger
// of the thresholds that apply, and sum·2^e otherwise.
func biasAddScaleGo(env Env, dst, src, bias []float32, rows, cols, e int) {
	s := pow2(e)
	src, dst, bias = src[:rows*cols], dst[:rows*cols], bias[:cols]
	daz, ftz := env.ZeroesInputs(), env.FlushesOutputs()
	if daz {
		bias = biasAsRead(bias)
	}
	flushBelow := uint32(minNormalBits) // both DAZ and FTZ zero a subnormal sum
	if ftz {
		flushBelow = max(flushBelow, tinyProductBelow(e))
	}
	var readBelow uint32 // inputs with |bits| below this read as zeros
	if daz {
		readBelow = minNormalBits
	}
	for r := 0; r < rows; r++ {
		in, out := src[r*cols:r*cols+cols], dst[r*cols:r*cols+cols]
		if !daz && !ftz {
			in, out = in[:len(bias)], out[:len(bias)]
			for j, b := range bias {
				out[j] = float32(in[j]+b) * s
			}
			continue
		}
		addScaleRowFlushing(out, in, bias, s, readBelow, flushBelow)
	}
}

// addScaleRowFlushing is biasAddScaleGo's loop over one row when the bias
// reads as itself: inputs below readBelow read as zeros, sums below
// flushBelow become zeros, the rest are scaled by s. Zeroing before the
// multiply (not selecting after it) keeps subnormal products, slow on some
// CPUs, out of the loop.
func addScaleRowFlushing(out, in, bias []float32, s float32, readBelow, flushBelow uint32) {
	in, out = in[:len(bias)], out[:len(bias)]
	for j, b := range bias {
		a := math.Float32frombits(zeroIfBelow(math.Float32bits(in[j]), readBelow))
		out[j] = math.Float32frombits(zeroIfBelow(math.Float32bits(a+b), flushBelow)) * s
	}
}
