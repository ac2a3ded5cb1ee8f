package fpnet

import (
	"math"

	"github.com/seed8b67a5e0/underflow/kernels"
)

// The network's elementwise ops, bias add and scaling by a power of two, in
// any denormal environment, bit-identical to kernels.Add and kernels.Mul
// but at native speed: the environment is applied around one native IEEE
// operation instead of calling the scalar reference per element.
//
// Why that is exact:
//   - DAZ: an input whose exponent field is zero (subnormal or zero) is read
//     as a zero of the same sign.
//   - Add: a tiny exact sum is always representable (both operands are
//     multiples of 2^-149), so the native sum is exact whenever it is tiny,
//     x86 and Arm tininess agree, and flushing means "a result with a zero
//     exponent field becomes a zero of its sign".
//   - Scaling by 2^e with 2^e a normal float32: the exact product x·2^e is
//     tiny iff |x| < 2^(-126-e). That is decided from the input, because a
//     native multiply could round an exact result just below 2^-126 up to
//     2^-126 (x86 FTZ flushes it: tininess is decided on the value rounded
//     with unbounded exponent, which here is the exact value). A product
//     that is not tiny is exact (or overflows natively).

const (
	expMask  = 0x7f800000
	signMask = 0x80000000
)

// zeroIfSubnormal returns a subnormal x as a zero of its sign. It serves
// both ends of an op: denormals-are-zero on an input, and flush-to-zero on
// an add result that is tiny (exact, so its zero exponent field says so).
func zeroIfSubnormal(x float32) float32 {
	b := math.Float32bits(x)
	if b&expMask == 0 {
		return math.Float32frombits(b & signMask)
	}
	return x
}

// AddEnv returns a+b in env, the same bits as kernels.Add(env, a, b).
func AddEnv(env kernels.Env, a, b float32) float32 {
	if env.ZeroesInputs() {
		a, b = zeroIfSubnormal(a), zeroIfSubnormal(b)
	}
	s := a + b
	if env.FlushesOutputs() {
		s = zeroIfSubnormal(s)
	}
	return s
}

// ScaleEnv returns x·2^e in env, the same bits as
// kernels.Mul(env, x, 2^e); -126 <= e <= 127.
func ScaleEnv(env kernels.Env, x float32, e int) float32 {
	s, tiny := pow2(e)
	if env.ZeroesInputs() {
		x = zeroIfSubnormal(x)
	}
	if env.FlushesOutputs() && x != 0 && math.Abs(float64(x)) < tiny {
		return math.Float32frombits(math.Float32bits(x) & signMask)
	}
	return x * s
}

// pow2 returns 2^e as a float32 and the float64 magnitude below which an
// input x makes x·2^e tiny (2^(-126-e)).
func pow2(e int) (scale float32, tinyBelow float64) {
	if e < -126 || e > 127 {
		panic("fpnet: power-of-two scaling 2^e needs -126 <= e <= 127")
	}
	return math.Float32frombits(uint32(e+127) << 23), ldexp64(1, -126-e)
}

// addBiasRows writes src + bias, bias (len cols) added to every row of src
// (rows×cols), in env, to dst (which may alias src).
func addBiasRows(env kernels.Env, dst, src, bias []float32, rows, cols int) {
	src = src[:rows*cols]
	dst = dst[:rows*cols]
	bias = bias[:cols]
	daz, ftz := env.ZeroesInputs(), env.FlushesOutputs()
	if !daz && !ftz {
		for r := 0; r < rows; r++ {
			in := src[r*cols : r*cols+cols]
			out := dst[r*cols : r*cols+cols]
			in, out = in[:len(bias)], out[:len(bias)]
			for j, b := range bias {
				out[j] = in[j] + b
			}
		}
		return
	}
	var flushBelow uint32 // sums with |bits| below this become zeros of their sign
	if ftz {
		flushBelow = minNormalBits
	}
	if daz && anySubnormal(bias) { // rare: DAZ changes the bias too
		for i, v := range src {
			dst[i] = AddEnv(env, v, bias[i%cols])
		}
		return
	}
	var readBelow uint32 // inputs with |bits| below this read as zeros
	if daz {
		readBelow = minNormalBits
	}
	for r := 0; r < rows; r++ {
		addRowFlushing(dst[r*cols:r*cols+cols], src[r*cols:r*cols+cols], bias, readBelow, flushBelow)
	}
}

// addRowFlushing is addBiasRows' loop over one row when the bias reads as
// itself: inputs below readBelow read as zeros, sums below flushBelow
// become zeros. A function of its own so that its few values stay in
// registers.
func addRowFlushing(out, in, bias []float32, readBelow, flushBelow uint32) {
	in, out = in[:len(bias)], out[:len(bias)]
	for j, b := range bias {
		a := math.Float32frombits(zeroIfBelow(math.Float32bits(in[j]), readBelow))
		out[j] = math.Float32frombits(zeroIfBelow(math.Float32bits(a+b), flushBelow))
	}
}

// addBiasScaleRows writes (src + bias)·2^e, bias (len cols) added to every
// row of src (rows×cols), in env, to dst (which may alias src): the same
// bits as addBiasRows followed by scaleInto, one pass instead of two. The
// two roundings and flushes stay, in that order; -126 <= e <= 127.
//
// Why one threshold is exact: the add's result is flushed (FTZ) or read as
// zero by the scaling (DAZ) when its exponent field is zero, and the
// scaling flushes (FTZ) an input whose exact product is tiny; either way
// the output is a zero of the sum's sign, and a zero sum scales to itself.
// So the output is a zero of the sum's sign when |sum| is below the larger
// of the thresholds that apply, and sum·2^e otherwise.
func addBiasScaleRows(env kernels.Env, dst, src, bias []float32, rows, cols, e int) {
	s, _ := pow2(e)
	src = src[:rows*cols]
	dst = dst[:rows*cols]
	bias = bias[:cols]
	daz, ftz := env.ZeroesInputs(), env.FlushesOutputs()
	if !daz && !ftz {
		for r := 0; r < rows; r++ {
			in := src[r*cols : r*cols+cols]
			out := dst[r*cols : r*cols+cols]
			in, out = in[:len(bias)], out[:len(bias)]
			for j, b := range bias {
				out[j] = float32(in[j]+b) * s
			}
		}
		return
	}
	flushBelow := uint32(minNormalBits) // both DAZ and FTZ zero a subnormal sum
	if ftz {
		flushBelow = max(flushBelow, tinyProductBelow(e))
	}
	if daz && anySubnormal(bias) { // rare: DAZ changes the bias too
		for i, v := range src {
			dst[i] = ScaleEnv(env, AddEnv(env, v, bias[i%cols]), e)
		}
		return
	}
	var readBelow uint32 // inputs with |bits| below this read as zeros
	if daz {
		readBelow = minNormalBits
	}
	for r := 0; r < rows; r++ {
		addScaleRowFlushing(dst[r*cols:r*cols+cols], src[r*cols:r*cols+cols], bias, s, readBelow, flushBelow)
	}
}

// addScaleRowFlushing is addBiasScaleRows' loop over one row when the bias
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

// anySubnormal reports whether DAZ would change any of v, so that rows
// added to a bias without one skip its DAZ.
func anySubnormal(v []float32) bool {
	for _, x := range v {
		if b := math.Float32bits(x); b&expMask == 0 && b&^signMask != 0 {
			return true
		}
	}
	return false
}

// minNormalBits is the bit pattern of 2^-126, the smallest normal float32.
const minNormalBits = 0x00800000

// zeroIfBelow returns the float32 bits b, or a zero of b's sign when |b|'s
// bits are below below (0: never), without a branch: for non-negative
// magnitudes bit order is value order, and the difference's sign bit
// spreads into the mask.
func zeroIfBelow(b, below uint32) uint32 {
	mag := b &^ signMask
	tiny := uint32(int32(mag-below) >> 31) // all ones iff mag < below
	return b &^ (tiny &^ signMask)
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

// scaleInPlace multiplies every element of x by 2^e in env.
func scaleInPlace(env kernels.Env, x []float32, e int) {
	scaleInto(env, x, x, e)
}

// scaleInto writes src·2^e in env to dst (which may alias src).
func scaleInto(env kernels.Env, dst, src []float32, e int) {
	s, _ := pow2(e)
	dst = dst[:len(src)]
	daz, ftz := env.ZeroesInputs(), env.FlushesOutputs()
	if !daz && !ftz {
		for i, v := range src {
			dst[i] = v * s
		}
		return
	}
	tinyBits := tinyProductBelow(e) // |x| bits below this are tiny
	for i, v := range src {
		b := math.Float32bits(v)
		mag := b &^ signMask
		if daz && mag&expMask == 0 {
			dst[i] = math.Float32frombits(b & signMask)
			continue
		}
		if ftz && mag != 0 {
			if mag < tinyBits {
				dst[i] = math.Float32frombits(b & signMask)
				continue
			}
		}
		dst[i] = v * s
	}
}
