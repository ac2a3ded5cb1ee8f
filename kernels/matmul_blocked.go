package kernels

// Cache blocking and packing around the assembly micro-kernels. Every
// kernel call continues the chains of one block of C from the sums stored
// there, so K-blocks, tiles and tails never change a bit; they only decide
// which memory the kernel reads.

import "sync"

// perturbedBlockBytes bounds the packed weights of a perturbed product with
// one row block (both members' for a pair): they stay in L2 beside the
// block of A while the kernel reads them.
const perturbedBlockBytes = 256 << 10

// microKernel is one assembly kernel with its tile and cache-block sizes.
type microKernel struct {
	mr, nr int // the register tile: mr rows × nr columns
	kc     int // k steps per call: the packed B panel kc×nr stays in L1
	mc     int // rows per call (a multiple of mr): bounds the work of one assembly call
	nc     int // columns per packed B block
	// run continues, for mtiles tiles of mr rows, the chains of C (row
	// stride ldc) over kc steps, reading A row-major (row stride lda) and
	// the packed B panel; mode is the control register value (MXCSR or
	// FPCR) for the environment.
	run func(a, b, c *float32, kc, lda, ldc, mtiles int, mode uint32)
	// runCols, when not nil, is run reading A by columns: A[i][p] at
	// a[p*lda+i], the storage of Aᵀ, so Aᵀ·B needs no packing of A.
	runCols func(a, b, c *float32, kc, lda, ldc, mtiles int, mode uint32)
	// transposeRows, when not nil, packs 8*groups rows of an nr-wide panel
	// from the storage of Bᵀ (columns cs floats apart).
	transposeRows func(dst, src *float32, groups, cs int)
	// copyRows, when not nil, copies kb rows of nr floats, rs floats apart
	// in src, to dst: the B panel packing without a memmove call per row.
	copyRows func(dst, src *float32, kb, rs int)
	// perturbBlock, when not nil, packs whole B panels of theta + s·eps
	// (rows rs floats apart in both), the product rounded before the add,
	// in IEEE, reading row by row: a perturbed member's weights
	// (MatMulPerturbed).
	perturbBlock func(dst, theta, eps *float32, kb, panels, rs int, s float32)
	// perturbPairBlock, when not nil, is perturbBlock for both members of
	// an antithetic pair, θ + s·ε and θ + (−s)·ε, reading θ and ε once.
	perturbPairBlock func(dst, dstMinus, theta, eps *float32, kb, panels, rs int, s, sMinus float32)
	// shortK, when not nil, runs a product whose chains are at most
	// shortKMax steps (row-major A and B, read in place): a low-rank
	// perturbation's u·B. narrow, when not nil, runs one with at most 4
	// columns (x·A), one row's chains in one 4-lane register, the columns
	// past n masked off by mask (n lanes of all ones).
	shortK func(a, b, c *float32, m, n, k, lda, ldb, ldc int, mode uint32)
	narrow func(a, b, c *float32, m, k, lda, ldb, ldc int, mask *uint32, mode uint32)
	// free holds scratch memory between calls. Not a sync.Pool: a pool is
	// emptied at every GC, and reallocating a megabyte of scratch per call
	// then causes the next GC.
	mu   sync.Mutex
	free []*blockScratch
}

// blockScratch is one call's packing memory.
type blockScratch struct {
	b     []float32 // packed B: one kc×nr panel, or nc/nr of them; grown on demand
	a     []float32 // A block copied row-major when A is not (the transposed form)
	aTail []float32 // the last, partial row tile of A, zero-padded to mr rows
	c     []float32 // C through a temporary when the tile is partial: mc×nr
}

func (kern *microKernel) scratch() *blockScratch {
	kern.mu.Lock()
	defer kern.mu.Unlock()
	if n := len(kern.free); n > 0 {
		s := kern.free[n-1]
		kern.free = kern.free[:n-1]
		return s
	}
	return &blockScratch{
		a:     make([]float32, kern.mc*kern.kc),
		aTail: make([]float32, kern.mr*kern.kc),
		c:     make([]float32, (kern.mc+kern.mr)*kern.nr),
	}
}

// release keeps s for later calls; as many as ever ran at once are kept.
func (kern *microKernel) release(s *blockScratch) {
	kern.mu.Lock()
	kern.free = append(kern.free, s)
	kern.mu.Unlock()
}

// packedB returns s.b with room for size floats.
func (s *blockScratch) packedB(size int) []float32 {
	if cap(s.b) < size {
		s.b = make([]float32, size)
	}
	return s.b[:size]
}

// product continues the chains of the m×n block of c (row stride ldc) with
// a·b over k.
//
// Loops, outer to inner: column blocks of nc, K-blocks of at most kc, row
// blocks of mc, column tiles of nr, and, inside the assembly, row tiles of
// mr. When all rows fit one row block, each B panel is packed just before
// its kernel call and is still in L1 when the kernel reads it.
func (kern *microKernel) product(mode uint32, c []float32, ldc int, a, b matrix, m, k, n int) {
	if a.cs == 1 && b.cs == 1 && b.eps == nil && kern.smallShape(mode, c, ldc, a, b, m, k, n) {
		return
	}
	s := kern.scratch()
	defer kern.release(s)
	nr := kern.nr
	// Equal K-blocks of at most kc: a short last block would pay a whole
	// load and store of C for a few steps.
	nkb := (k + kern.kc - 1) / kern.kc
	kstep := (k + nkb - 1) / nkb
	// A perturbed member's weights are packed a block at a time, row by
	// row, so that θ and the noise stream sequentially (packPerturbed).
	// With several row blocks the full width is packed once for all of
	// them, as unperturbed.
	perturbed, nc := b.eps != nil, kern.nc
	if perturbed && m <= kern.mc {
		kern.perturbedOneBlock(mode, c, nil, ldc, a, a, b, m, k, n)
		return
	}
	for jc := 0; jc < n; jc += nc {
		nb := min(nc, n-jc)
		for pc := 0; pc < k; pc += kstep {
			kb := min(kstep, k-pc)
			if m <= kern.mc && !perturbed {
				ab := kern.prepareA(s, a, 0, m, pc, kb, nb)
				panel := s.packedB(kb * nr)
				for j0 := 0; j0 < nb; j0 += nr {
					kern.packB(panel, b, pc, kb, jc+j0, min(nr, nb-j0))
					kern.tiles(mode, c[jc+j0:], ldc, ab, s, panel, m, kb, min(nr, nb-j0))
				}
				continue
			}
			packed := s.packedB(kb * (nb + nr - 1) / nr * nr)
			if perturbed {
				kern.packPerturbed(packed, b, pc, kb, jc, nb)
			} else {
				for j0 := 0; j0 < nb; j0 += nr {
					kern.packB(packed[j0*kb:j0*kb+kb*nr], b, pc, kb, jc+j0, min(nr, nb-j0))
				}
			}
			for ic := 0; ic < m; ic += kern.mc {
				mb := min(kern.mc, m-ic)
				ab := kern.prepareA(s, a, ic, mb, pc, kb, nb)
				for j0 := 0; j0 < nb; j0 += nr {
					kern.tiles(mode, c[ic*ldc+jc+j0:], ldc, ab, s, packed[j0*kb:j0*kb+kb*nr], mb, kb, min(nr, nb-j0))
				}
			}
		}
	}
}

// aBlock is one mb×kb block of A as a kernel reads it: whole row tiles
// from data through run, the last partial tile from s.aTail through the
// same kernel with lda tailLda.
type aBlock struct {
	data         []float32
	lda, tailLda int
	run          func(a, b, c *float32, kc, lda, ldc, mtiles int, mode uint32)
}

// prepareA returns the mb×kb block of a at (ic, pc) as the kernel reads it,
// and copies its last partial row tile, zero-padded to mr rows, into
// s.aTail.
func (kern *microKernel) prepareA(s *blockScratch, a matrix, ic, mb, pc, kb, nb int) aBlock {
	mr := kern.mr
	full, rem := mb/mr, mb%mr
	src := a.sub(ic, pc)
	if a.rs == 1 && kern.runCols != nil {
		// Aᵀ stored: the kernel reads A by columns. In place when the block
		// serves few column tiles; otherwise its kb rows of mb floats are
		// copied together (plain row copies, no transposition), which also
		// avoids a stride that is a multiple of 4 KiB. The tail tile is
		// copied in the same layout.
		ab := aBlock{data: src.data, lda: a.cs, tailLda: mr, run: kern.runCols}
		if nb > 2*kern.nr {
			copyBlock(s.a, mb, src.data, a.cs, kb, mb)
			ab.data, ab.lda = s.a, mb
		}
		if rem > 0 {
			tail := s.aTail[:mr*kb]
			clear(tail)
			copyBlock(tail, mr, ab.data[full*mr:], ab.lda, kb, rem)
		}
		return ab
	}
	ab := aBlock{data: src.data, lda: a.rs, tailLda: kb, run: kern.run}
	if a.cs != 1 {
		packRows(s.a, src, mb, kb)
		ab.data, ab.lda = s.a, kb
	} else if nb > 2*kern.nr {
		// Copy the block when it is reused over several column tiles:
		// contiguous rows kb apart instead of lda apart, which for lda a
		// multiple of 1024 would put every row in the same L1 set.
		copyBlock(s.a, kb, src.data, a.rs, mb, kb)
		ab.data, ab.lda = s.a, kb
	}
	if rem > 0 {
		tail := s.aTail[:mr*kb]
		clear(tail)
		copyBlock(tail, kb, ab.data[full*mr*ab.lda:], ab.lda, rem, kb)
	}
	return ab
}

// tiles runs the kernel over the mb rows of one column tile (nw <= nr
// columns of c) with the packed B panel. Whole tiles work in c itself; a
// partial tile goes through s.c, whose padding columns meet the zero
// columns of the panel and whose padding rows meet the zero rows of s.aTail.
func (kern *microKernel) tiles(mode uint32, c []float32, ldc int, ab aBlock, s *blockScratch, panel []float32, mb, kb, nw int) {
	mr, nr := kern.mr, kern.nr
	full, rem := mb/mr, mb%mr
	if nw == nr {
		if full > 0 {
			ab.run(&ab.data[0], &panel[0], &c[0], kb, ab.lda, ldc, full, mode)
		}
		if rem > 0 {
			tc := s.c[:mr*nr]
			tileIn(tc, nr, c[full*mr*ldc:], ldc, rem, nr)
			ab.run(&s.aTail[0], &panel[0], &tc[0], kb, ab.tailLda, nr, 1, mode)
			copyBlock(c[full*mr*ldc:], ldc, tc, nr, rem, nr)
		}
		return
	}
	tc := s.c[:(full+1)*mr*nr]
	tileIn(tc, nr, c, ldc, mb, nw)
	if full > 0 {
		ab.run(&ab.data[0], &panel[0], &tc[0], kb, ab.lda, nr, full, mode)
	}
	if rem > 0 {
		ab.run(&s.aTail[0], &panel[0], &tc[full*mr*nr], kb, ab.tailLda, nr, 1, mode)
	}
	copyBlock(c, ldc, tc, nr, mb, nw)
}

// packB copies the kb×nw block of b at (pc, j0) into panel: kb rows of nr
// floats, padded with zero columns when nw < nr.
func (kern *microKernel) packB(panel []float32, b matrix, pc, kb, j0, nw int) {
	nr := kern.nr
	src := b.sub(pc, j0)
	if src.eps != nil { // a perturbed member: row-major only (MatMulPerturbed)
		for p := 0; p < kb; p++ {
			row := panel[p*nr : p*nr+nr]
			perturbRow(row[:nw], src.data[p*src.rs:], src.eps[p*src.rs:], src.s)
			clear(row[nw:])
		}
		return
	}
	if src.cs == 1 && nw == nr && kern.copyRows != nil {
		kern.copyRows(&panel[0], &src.data[0], kb, src.rs)
		return
	}
	if src.cs == 1 {
		for p := 0; p < kb; p++ {
			row := panel[p*nr : p*nr+nr]
			copy(row, src.data[p*src.rs:p*src.rs+nw])
			clear(row[nw:])
		}
		return
	}
	// Transposed b (rs = 1): column j of the block is contiguous in p.
	// Eight p at a time, so each column's cache line is read once per
	// group and the panel rows are written whole.
	if nw < nr {
		clear(panel)
	}
	cs := src.cs
	p := 0
	if kern.transposeRows != nil && nw == nr && kb >= 8 {
		kern.transposeRows(&panel[0], &src.data[0], kb/8, cs)
		p = kb / 8 * 8
	}
	for ; p+8 <= kb; p += 8 {
		rows := panel[p*nr : (p+8)*nr]
		for j := 0; j < nw; j++ {
			col := (*[8]float32)(src.data[j*cs+p:])
			rows[j], rows[nr+j], rows[2*nr+j], rows[3*nr+j] = col[0], col[1], col[2], col[3]
			rows[4*nr+j], rows[5*nr+j], rows[6*nr+j], rows[7*nr+j] = col[4], col[5], col[6], col[7]
		}
	}
	for ; p < kb; p++ {
		row := panel[p*nr : p*nr+nw]
		for j := range row {
			row[j] = src.data[j*cs+p]
		}
	}
}

// packPerturbed packs the kb×nb block at (pc, jc) of a perturbed B (b.eps
// set) into packed, panel after panel of kb×nr: the whole panels row by row
// (perturbBlock), a last partial one, zero-padded, by packB.
func (kern *microKernel) packPerturbed(packed []float32, b matrix, pc, kb, jc, nb int) {
	nr := kern.nr
	j0 := 0
	if kern.perturbBlock != nil && nb >= nr {
		src := b.sub(pc, jc)
		kern.perturbBlock(&packed[0], &src.data[0], &src.eps[0], kb, nb/nr, src.rs, src.s)
		j0 = nb / nr * nr
	}
	for ; j0 < nb; j0 += nr {
		kern.packB(packed[j0*kb:j0*kb+kb*nr], b, pc, kb, jc+j0, min(nr, nb-j0))
	}
}

// perturbedOneBlock continues the chains of c1 (m×n, row stride ldc) with
// a1·(θ + s·ε), where b holds θ, ε and s, and, when c2 is not nil, those of
// c2 with a2·(θ + (−s)·ε): an antithetic pair, whose weights are packed
// together in one pass over θ and ε, and whose block of A is prepared once
// when a2 is a1. All rows fit one row block (m <= mc). K-blocks run
// outside, so each block of A is prepared once, and the weights are packed
// perturbedNC (a pair: perturbedPairNC) columns at a time, so the packed
// block stays in L2 while the kernel reads it.
func (kern *microKernel) perturbedOneBlock(mode uint32, c1, c2 []float32, ldc int, a1, a2, b matrix, m, k, n int) {
	pair := c2 != nil
	s1 := kern.scratch()
	defer kern.release(s1)
	s2 := s1
	if pair {
		s2 = kern.scratch()
		defer kern.release(s2)
	}
	nr := kern.nr
	shared := &a1.data[0] == &a2.data[0] && a1.rs == a2.rs && a1.cs == a2.cs
	// Whole rows of θ and ε are read, so both stream sequentially; the
	// K-blocks are short enough that the packed blocks stay in L2.
	nc := min(kern.nc, n)
	members := 1
	if pair {
		members = 2
	}
	width := (nc + nr - 1) / nr * nr
	kmax := max(8, min(kern.kc, perturbedBlockBytes/(4*width*members)))
	nkb := (k + kmax - 1) / kmax
	kstep := (k + nkb - 1) / nkb
	for pc := 0; pc < k; pc += kstep {
		kb := min(kstep, k-pc)
		ab1 := kern.prepareA(s1, a1, 0, m, pc, kb, n)
		ab2, sa2 := ab1, s1
		if pair && !shared {
			ab2, sa2 = kern.prepareA(s2, a2, 0, m, pc, kb, n), s2
		}
		for jc := 0; jc < n; jc += nc {
			nb := min(nc, n-jc)
			size := kb * ((nb + nr - 1) / nr) * nr
			plus := s1.packedB(size)
			if pair {
				minus := s2.packedB(size)
				kern.packPerturbedPair(plus, minus, b, pc, kb, jc, nb)
				for j0 := 0; j0 < nb; j0 += nr {
					kern.tiles(mode, c2[jc+j0:], ldc, ab2, sa2, minus[j0*kb:j0*kb+kb*nr], m, kb, min(nr, nb-j0))
				}
			} else {
				kern.packPerturbed(plus, b, pc, kb, jc, nb)
			}
			for j0 := 0; j0 < nb; j0 += nr {
				kern.tiles(mode, c1[jc+j0:], ldc, ab1, s1, plus[j0*kb:j0*kb+kb*nr], m, kb, min(nr, nb-j0))
			}
		}
	}
}

// packPerturbedPair is packPerturbed for both members of a pair: plus gets
// θ + s·ε, minus θ + (−s)·ε.
func (kern *microKernel) packPerturbedPair(plus, minus []float32, b matrix, pc, kb, jc, nb int) {
	nr := kern.nr
	j0 := 0
	if kern.perturbPairBlock != nil && nb >= nr {
		src := b.sub(pc, jc)
		kern.perturbPairBlock(&plus[0], &minus[0], &src.data[0], &src.eps[0], kb, nb/nr, src.rs, src.s, -src.s)
		j0 = nb / nr * nr
	}
	bm := b
	bm.s = -b.s
	for ; j0 < nb; j0 += nr {
		kern.packB(plus[j0*kb:j0*kb+kb*nr], b, pc, kb, jc+j0, min(nr, nb-j0))
		kern.packB(minus[j0*kb:j0*kb+kb*nr], bm, pc, kb, jc+j0, min(nr, nb-j0))
	}
}

// packRows copies the mb×kb block of a row-major into dst (row stride kb),
// for an A that is stored transposed.
func packRows(dst []float32, a matrix, mb, kb int) {
	for p := 0; p < kb; p++ {
		for r := 0; r < mb; r++ {
			dst[r*kb+p] = a.at(r, p)
		}
	}
}

// tileIn copies rows×cols of src (stride lds) into dst (stride ldd), zeroing
// the rest of each dst row and the rows up to the next whole tile.
func tileIn(dst []float32, ldd int, src []float32, lds, rows, cols int) {
	clear(dst)
	copyBlock(dst, ldd, src, lds, rows, cols)
}

// copyBlock copies rows×cols of src (stride lds) into dst (stride ldd).
func copyBlock(dst []float32, ldd int, src []float32, lds, rows, cols int) {
	for r := 0; r < rows; r++ {
		copy(dst[r*ldd:r*ldd+cols], src[r*lds:r*lds+cols])
	}
}

// shortKMax is the longest chain shortK runs: beyond it the packed kernel's
// register tile wins.
const shortKMax = 8

// narrowMasks[n] selects the first n of 4 lanes.
var narrowMasks = [5][4]uint32{{}, {^uint32(0)}, {^uint32(0), ^uint32(0)}, {^uint32(0), ^uint32(0), ^uint32(0)},
	{^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0)}}

// smallShape runs the product in place, without packing, when it has at
// most 4 columns (narrow) or chains of at most shortKMax steps (shortK),
// and reports whether it did. Each call covers whole rows, about 2^20
// fused multiply-adds at most, so the garbage collector is not held up.
func (kern *microKernel) smallShape(mode uint32, c []float32, ldc int, a, b matrix, m, k, n int) bool {
	switch {
	case n <= 4 && kern.narrow != nil:
		step := max(1, (1<<20)/(k*n))
		for i0 := 0; i0 < m; i0 += step {
			rows := min(step, m-i0)
			kern.narrow(&a.data[i0*a.rs], &b.data[0], &c[i0*ldc], rows, k, a.rs, b.rs, ldc, &narrowMasks[n][0], mode)
		}
		return true
	case k <= shortKMax && kern.shortK != nil:
		step := max(1, (1<<20)/(k*n))
		for i0 := 0; i0 < m; i0 += step {
			rows := min(step, m-i0)
			kern.shortK(&a.data[i0*a.rs], &b.data[0], &c[i0*ldc], rows, n, k, a.rs, b.rs, ldc, mode)
		}
		return true
	}
	return false
}
