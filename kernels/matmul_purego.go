package kernels

// The pure-Go product: the canonical chain through the exact scalar
// reference (reference.go), with a shortcut that gives the same bits. It is
// the purego backend, the route for an environment a SIMD backend cannot do
// natively, and (through the reference) the oracle of the tests.

import "math"

// refProduct continues, for each element of the m×n block of c (row stride
// ldc), the chain over p = 0..k-1 in increasing p. The loop runs p outside j
// so that b is read by rows, which changes no element's order.
func refProduct(env Env, c []float32, ldc int, a, b matrix, m, k, n int) {
	zeroes := env.ZeroesInputs()
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		for p := 0; p < k; p++ {
			x := daz(env, a.at(i, p))
			bp := b.sub(p, 0)
			if !zeroes && bp.cs == 1 {
				brow := bp.data[:n]
				for j := range row {
					row[j] = fmaChainStep(env, x, brow[j], row[j])
				}
				continue
			}
			for j := range row {
				acc := row[j]
				if zeroes {
					acc = daz(env, acc)
				}
				row[j] = fmaChainStep(env, x, daz(env, bp.data[j*bp.cs]), acc)
			}
		}
	}
}

const (
	chainLo, chainHi        = 1023 - 125, 1023 + 127 // biased float64 exponents of [2^-125, 2^127)
	chainDropped, chainHalf = 1<<29 - 1, 1 << 28     // the bits float32 drops; a tie
)

// fmaChainStep returns FMA(env, a, b, c) for operands already read as env
// reads inputs. The float64 product of two float32 values is exact, so s
// below is the exact a*b+c rounded once to float64. Rounding s to float32
// gives the correctly rounded result unless s is exactly halfway between
// two float32 values (double rounding), and no environment changes a result
// of magnitude in [2^-125, 2^127) (no flush, no overflow, full precision).
// Everything else goes to the reference.
func fmaChainStep(env Env, a, b, c float32) float32 {
	s := float64(float64(a)*float64(b)) + float64(c)
	if bits := math.Float64bits(s); (bits>>52&0x7ff)-chainLo < chainHi-chainLo && bits&chainDropped != chainHalf {
		return float32(s)
	}
	return FMA(env, a, b, c)
}
