package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// perturbedOracle is AddScaled's reference (IEEE: the product rounded, then
// the sum) followed by the canonical chain of every element.
func perturbedOracle(env Env, dst, a, theta, eps []float32, s float32, m, k, n int) {
	w := make([]float32, k*n)
	for i := range w {
		w[i] = Add(IEEE, theta[i], Mul(IEEE, s, eps[i]))
	}
	mmOracle(env, mmForms[0], dst, a, w, m, k, n)
}

// MatMulPerturbed against AddScaled then the canonical chain, on every
// backend (the AVX-512 twin included), every environment, the shapes of the
// product tests (tile tails, K-blocks, row blocks) and several goroutines.
func TestMatMulPerturbedMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	shapes := mmShapes(r)
	// -short (qemu, the emulated AVX-512 stage) keeps mmShapes' {131, 9, 20}
	// and {125, 17, 70} for m > mc.
	if !testing.Short() {
		shapes = append(shapes, [3]int{130, 300, 40}) // m > mc: the whole block packed at once
	}
	for si, sh := range shapes {
		m, k, n := sh[0], sh[1], sh[2]
		scale := mmScales[si%len(mmScales)]
		c := newMMCase(r, m, k, n, scale)
		eps := newMMCase(r, 1, k, n, [3]int{0, 0, 0}).b // standard-normal-sized noise with the boundary values mixed in
		s := []float32{0.01, -0.01, 0x1p-126, -3}[si%4]
		for _, env := range Envs {
			want := make([]float32, m*n)
			perturbedOracle(env, want, c.a, c.b, eps, s, m, k, n)
			for _, be := range testBackends() {
				for _, threads := range []int{1, 3} {
					got := make([]float32, m*n)
					for i := range got {
						got[i] = float32(math.NaN()) // must be overwritten
					}
					withBackend(be, func() { MatMulPerturbed(env, got, c.a, c.b, eps, s, m, k, n, threads) })
					markServed(be, env)
					for i := range want {
						if !sameBits(got[i], want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
							t.Fatalf("%s %s MatMulPerturbed m=%d k=%d n=%d s=%g threads=%d: element (%d,%d) = %#08x, reference %#08x",
								be.name, env, m, k, n, s, threads, i/max(n, 1), i%max(n, 1), math.Float32bits(got[i]), math.Float32bits(want[i]))
						}
					}
				}
			}
		}
	}
}

// MatMulPerturbedPair against two MatMulPerturbed oracles, with distinct
// and shared left operands, on every backend and environment.
func TestMatMulPerturbedPairMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	shapes := mmShapes(r)
	// -short keeps mmShapes' paths: {29, 513, 47} (one row block,
	// K-blocks), {131, 9, 20} (row blocks).
	if !testing.Short() {
		shapes = append(shapes, [3]int{130, 300, 40}, [3]int{100, 70, 300})
	}
	for si, sh := range shapes {
		m, k, n := sh[0], sh[1], sh[2]
		c := newMMCase(r, m, k, n, mmScales[si%len(mmScales)])
		aMinus := newMMCase(r, m, k, 1, mmScales[si%len(mmScales)]).a
		eps := newMMCase(r, 1, k, n, [3]int{0, 0, 0}).b
		s := []float32{0.01, -0.01, 0x1p-126, -3}[si%4]
		if testing.Short() && m > 120 {
			continue // more rows than any kernel's row block: two MatMulPerturbed calls, tested above
		}
		for _, env := range Envs {
			wantP := make([]float32, m*n)
			perturbedOracle(env, wantP, c.a, c.b, eps, s, m, k, n)
			for _, shared := range []bool{true, false} {
				a2 := aMinus
				if shared {
					a2 = c.a
				}
				wantM := make([]float32, m*n)
				perturbedOracle(env, wantM, a2, c.b, eps, -s, m, k, n)
				for _, be := range testBackends() {
					gotP, gotM := make([]float32, m*n), make([]float32, m*n)
					for i := range gotP {
						gotP[i], gotM[i] = float32(math.NaN()), float32(math.NaN())
					}
					withBackend(be, func() { MatMulPerturbedPair(env, gotP, gotM, c.a, a2, c.b, eps, s, m, k, n) })
					markServed(be, env)
					for i := range wantP {
						for _, x := range [][2]float32{{gotP[i], wantP[i]}, {gotM[i], wantM[i]}} {
							if !sameBits(x[0], x[1]) && !(x[0] != x[0] && x[1] != x[1]) {
								t.Fatalf("%s %s MatMulPerturbedPair m=%d k=%d n=%d s=%g shared=%v: element %d = %#08x, reference %#08x (plus %v)",
									be.name, env, m, k, n, s, shared, i, math.Float32bits(x[0]), math.Float32bits(x[1]), x == [2]float32{gotP[i], wantP[i]})
							}
						}
					}
				}
			}
		}
	}
}

// The perturbed block packers on the operands around every rounding and
// flushing boundary of the multiply and the add, against the scalar
// reference, on every backend with a kernel.
func TestPerturbBlockMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, be := range testBackends() {
		if be.kern != nil {
			checkPerturbedBlock(t, be.name, be.kern, r)
		}
	}
}

// checkPerturbedBlock packs perturbed blocks of 1, 3 and 200 rows, whole
// and partial panels, through the blocked driver's packing and compares
// every packed value, padding included, with the reference.
func checkPerturbedBlock(t *testing.T, name string, kern *microKernel, r *rand.Rand) {
	t.Helper()
	vals := elementwiseOperands(r, 3000)
	nr := kern.nr
	for _, kb := range []int{1, 3, 200} {
		for _, nb := range []int{nr, 3 * nr, 3*nr - 1, 1} {
			rs := nb + 5
			theta, eps := make([]float32, kb*rs), make([]float32, kb*rs)
			for i := range theta {
				theta[i], eps[i] = vals[(i*7)%len(vals)], vals[(i*131+5)%len(vals)]
			}
			for _, s := range []float32{0.01, -0x1p-100, 0x1p-126, 3, 0, 0x1p+100} {
				panels := (nb + nr - 1) / nr
				packed := make([]float32, kb*panels*nr+1)
				packed[len(packed)-1] = -1
				b := matrix{data: theta, rs: rs, cs: 1, eps: eps, s: s}
				kern.packPerturbed(packed[:kb*panels*nr], b, 0, kb, 0, nb)
				for q := 0; q < panels; q++ {
					for p := 0; p < kb; p++ {
						for jj := 0; jj < nr; jj++ {
							j := q*nr + jj
							want := float32(0)
							if j < nb {
								want = Add(IEEE, theta[p*rs+j], Mul(IEEE, s, eps[p*rs+j]))
							}
							if got := packed[(q*kb+p)*nr+jj]; !sameBits(got, want) && !(got != got && want != want) {
								t.Fatalf("%s perturbed block kb=%d nb=%d s=%g: panel %d [%d][%d] = %#08x, reference %#08x",
									name, kb, nb, s, q, p, jj, math.Float32bits(got), math.Float32bits(want))
							}
						}
					}
				}
				if packed[len(packed)-1] != -1 {
					t.Fatalf("%s perturbed block kb=%d nb=%d wrote past the block", name, kb, nb)
				}
				// The pair packer: plus must equal the single pack, minus
				// the single pack with -s.
				plus, minus := make([]float32, len(packed)-1), make([]float32, len(packed)-1)
				kern.packPerturbedPair(plus, minus, b, 0, kb, 0, nb)
				single := make([]float32, len(packed)-1)
				bm := b
				bm.s = -s
				kern.packPerturbed(single, bm, 0, kb, 0, nb)
				for i := range plus {
					if !sameBits(plus[i], packed[i]) || !sameBits(minus[i], single[i]) {
						t.Fatalf("%s perturbed pair block kb=%d nb=%d s=%g: element %d = %#08x/%#08x, single packs %#08x/%#08x",
							name, kb, nb, s, i, math.Float32bits(plus[i]), math.Float32bits(minus[i]), math.Float32bits(packed[i]), math.Float32bits(single[i]))
					}
				}
			}
		}
	}
}

// MatMulPacked against the canonical chain on every backend and
// environment, on the product tests' shapes (column blocks, K-blocks, row
// blocks, tile tails), with a PackedB reused across shapes; and when the
// backend that packed it is not the one serving, it still gives the bits.
func TestMatMulPackedMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	shapes := append(mmShapes(r), [3]int{7, 20, 1100}) // two column blocks
	// -short keeps mmShapes' {29, 513, 47} and {131, 9, 20} for K-blocks
	// and row blocks.
	if !testing.Short() {
		shapes = append(shapes, [3]int{130, 300, 40}, [3]int{250, 513, 33})
	}
	var pb PackedB
	for si, sh := range shapes {
		m, k, n := sh[0], sh[1], sh[2]
		c := newMMCase(r, m, k, n, mmScales[si%len(mmScales)])
		for _, env := range Envs {
			want := make([]float32, m*n)
			mmOracle(env, mmForms[0], want, c.a, c.b, m, k, n)
			bes := testBackends()
			for bi, be := range bes {
				withBackend(be, func() { pb.Pack(c.b, k, n) })
				// Served by the backend that packed, then by another one.
				for _, server := range []*backend{be, bes[(bi+1)%len(bes)]} {
					got := make([]float32, m*n)
					for i := range got {
						got[i] = float32(math.NaN())
					}
					withBackend(server, func() { MatMulPacked(env, got, c.a, &pb, m) })
					markServed(server, env)
					for i := range want {
						if !sameBits(got[i], want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
							t.Fatalf("packed by %s, served by %s, %s m=%d k=%d n=%d: element (%d,%d) = %#08x, reference %#08x",
								be.name, server.name, env, m, k, n, i/n, i%n, math.Float32bits(got[i]), math.Float32bits(want[i]))
						}
					}
				}
			}
		}
	}
}

// WeightedSum against AddScaled's reference pair by pair, on every backend
// and environment, with lengths that leave every tail (blocks of 32, of 8,
// single elements) and pair counts around the group size; weights include
// zero, negative zero and tiny values so signed zeros and flushes occur.
func TestWeightedSumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	vals := elementwiseOperands(r, 3000)
	weights := []float32{0.25, -0.5, 0, float32(math.Copysign(0, -1)), 0x1p-126, -3, 0x1p-100, 1e-3, 7, -0x1p+60}
	for _, n := range []int{1, 7, 8, 31, 32, 33, 100, 4097, 9000} {
		for _, pairs := range []int{1, 2, weightedSumGroup - 1, weightedSumGroup, weightedSumGroup + 3, 3*weightedSumGroup + 1} {
			eps := make([][]float32, pairs)
			w := make([]float32, pairs)
			for p := range eps {
				eps[p] = make([]float32, n+p) // longer than acc is allowed
				for i := range eps[p] {
					eps[p][i] = vals[(i*7+p*131+n)%len(vals)]
				}
				w[p] = weights[(p+n)%len(weights)]
			}
			start := make([]float32, n)
			for i := range start {
				start[i] = vals[(i*13+pairs)%len(vals)]
			}
			for _, env := range Envs {
				want := append([]float32(nil), start...)
				for p := range eps {
					for i := range want {
						want[i] = Add(env, want[i], Mul(env, w[p], eps[p][i]))
					}
				}
				for _, be := range testBackends() {
					got := append([]float32(nil), start...)
					withBackend(be, func() { WeightedSum(env, got, eps, w) })
					markServed(be, env)
					for i := range want {
						if !sameBits(got[i], want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
							t.Fatalf("%s %v n=%d pairs=%d: element %d = %#08x, reference %#08x", be.name, env, n, pairs, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
						}
					}
				}
			}
		}
	}
}

// The small-shape kernels (at most 4 columns; chains of at most shortKMax
// steps) on shapes around their blocks: 8-row groups and single rows,
// 32-, 8- and 1-column blocks, every environment and every form.
func TestMatMulSmallShapes(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	var shapes [][3]int
	for _, n := range []int{1, 2, 3, 4} {
		for _, m := range []int{1, 7, 8, 9, 17, 200} {
			shapes = append(shapes, [3]int{m, 1 + r.IntN(300), n})
		}
	}
	widths := []int{5, 8, 31, 32, 33, 41, 512}
	forms := mmForms
	if testing.Short() {
		// qemu and the emulated AVX-512 stage: one width per tail case, and
		// the forms that read A and B in place (the transposed ones never
		// take the small-shape kernels; TestMatMulBackendsMatchReference
		// runs them on these sizes).
		widths = []int{5, 8, 33, 512}
		forms = []mmForm{mmForms[0], mmForms[1]}
	}
	for k := 1; k <= shortKMax+1; k++ {
		for _, n := range widths {
			shapes = append(shapes, [3]int{1 + r.IntN(20), k, n})
		}
	}
	for si, sh := range shapes {
		c := newMMCase(r, sh[0], sh[1], sh[2], mmScales[si%len(mmScales)])
		for _, env := range Envs {
			for _, f := range forms {
				mmCheck(t, env, f, c)
			}
		}
	}
}
