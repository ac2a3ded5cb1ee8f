package kernels

import "fmt"

// PackedB is the right operand of many products, packed once in the panel
// layout the active backend's kernel reads. A product with it
// (MatMulPacked) skips the packing that MatMul does on every call, which at
// a hundred rows costs about a tenth of the product. Evolution strategies
// use it for weights that every member of a generation shares.
//
// It keeps a reference to the matrix it packed: that matrix must not
// change while the PackedB is in use (Pack it again after a change).
type PackedB struct {
	b    []float32 // the k×n matrix, row-major, as given to Pack
	k, n int
	be   *backend  // the backend whose layout data has; nil: none packed
	data []float32 // for each column block of nc, each K-block, each panel of nr columns: kb×nr floats
}

// Pack packs the k×n row-major matrix b for the active backend, reusing the
// PackedB's memory when it is large enough.
func (pb *PackedB) Pack(b []float32, k, n int) {
	if k < 0 || n < 0 || overflows(k, n) || len(b) < k*n {
		panic(fmt.Sprintf("kernels.PackedB.Pack: %d values for k=%d n=%d", len(b), k, n))
	}
	be := serving()
	pb.b, pb.k, pb.n, pb.be = b[:k*n], k, n, be
	kern := be.kern
	if kern == nil || k == 0 || n == 0 {
		pb.data = pb.data[:0]
		return
	}
	nr := kern.nr
	kstep := kern.kstep(k)
	size := 0
	for jc := 0; jc < n; jc += kern.nc {
		size += k * ((min(kern.nc, n-jc) + nr - 1) / nr) * nr
	}
	if cap(pb.data) < size {
		pb.data = make([]float32, size)
	}
	pb.data = pb.data[:size]
	bv := matrix{data: b, rs: n, cs: 1}
	off := 0
	for jc := 0; jc < n; jc += kern.nc {
		nb := min(kern.nc, n-jc)
		for pc := 0; pc < k; pc += kstep {
			kb := min(kstep, k-pc)
			for j0 := 0; j0 < nb; j0 += nr {
				kern.packB(pb.data[off:off+kb*nr], bv, pc, kb, jc+j0, min(nr, nb-j0))
				off += kb * nr
			}
		}
	}
}

// MatMulPacked sets dst = a·b for the matrix b that pb packed: a is m×k,
// dst m×n, row-major. The bits are MatMul's. When the backend serving now
// is not the one that packed pb (or cannot do env natively), it reads the
// matrix itself instead.
func MatMulPacked(env Env, dst, a []float32, pb *PackedB, m int) {
	k, n := pb.k, pb.n
	checkDims("MatMulPacked", env, dst, a, pb.b, m, k, n)
	clear(dst[:m*n])
	if m == 0 || n == 0 || k == 0 {
		return
	}
	be := serving()
	mode, native := be.mode(env)
	if !native || be != pb.be || be.kern == nil {
		if !native {
			be = pureGo
		}
		run(be, env, mode, dst, matrix{data: a, rs: k, cs: 1}, matrix{data: pb.b, rs: n, cs: 1}, m, k, n, 1)
		return
	}
	be.kern.productPacked(mode, dst, n, matrix{data: a, rs: k, cs: 1}, pb.data, m, k, n)
}

// kstep is the K-block length for a product over k: equal blocks of at most
// kc, since a short last block would pay a whole load and store of C for a
// few steps.
func (kern *microKernel) kstep(k int) int {
	nkb := (k + kern.kc - 1) / kern.kc
	return (k + nkb - 1) / nkb
}

// productPacked is product with every B panel already packed (PackedB's
// layout): the loops of product's many-row path without the packing.
func (kern *microKernel) productPacked(mode uint32, c []float32, ldc int, a matrix, packed []float32, m, k, n int) {
	s := kern.scratch()
	defer kern.release(s)
	nr := kern.nr
	kstep := kern.kstep(k)
	off := 0
	for jc := 0; jc < n; jc += kern.nc {
		nb := min(kern.nc, n-jc)
		for pc := 0; pc < k; pc += kstep {
			kb := min(kstep, k-pc)
			blk := packed[off : off+kb*((nb+nr-1)/nr)*nr]
			for ic := 0; ic < m; ic += kern.mc {
				mb := min(kern.mc, m-ic)
				ab := kern.prepareA(s, a, ic, mb, pc, kb, nb)
				for j0 := 0; j0 < nb; j0 += nr {
					kern.tiles(mode, c[ic*ldc+jc+j0:], ldc, ab, s, blk[j0*kb:j0*kb+kb*nr], mb, kb, min(nr, nb-j0))
				}
			}
			off += len(blk)
		}
	}
}
