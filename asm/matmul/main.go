// Command matmul generates the amd64 matrix-product micro-kernels of package
// kernels: one AVX2+FMA (ymm) and one AVX-512 (zmm) kernel, both from the
// same code below, parameterised only by vector register file and tile
// height. Sharing the generator is deliberate: the AVX-512 kernel cannot run
// on every development machine, so it must be the tested AVX2 kernel with
// wider registers and nothing else.
//
// Each kernel computes, for mtiles consecutive tiles of mr rows × nr columns,
// the canonical chain acc = fma(A[i][p], B[p][j], acc) for p = 0..kc-1 in
// increasing p, starting from the values stored in C. It vectorises across j
// (broadcast A[i][p], multiply by a vector of B[p][j..]), so every element's
// chain is exactly the scalar one. The MXCSR value for the denormal
// environment is loaded on entry and the caller's value restored on exit.
package main

//go:generate go run . -out ../../kernels/matmul_gen_amd64.s -stubs ../../kernels/matmul_gen_amd64.go -pkg kernels

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// kernel describes one micro-kernel: its name, register file and tile shape.
type kernel struct {
	name   string
	isa    string            // for the doc comment
	lanes  int               // float32 lanes per vector register
	vec    []reg.VecPhysical // the register file, in number order
	mr     int               // rows per tile
	nvec   int               // vectors per row: nr = nvec × lanes
	unroll int               // k steps per loop iteration
	// aColumns: A is read column by column, A[i][p] at a + 4i + p*lda
	// bytes (the storage of Aᵀ), instead of row by row.
	aColumns bool
}

func (k kernel) nr() int { return k.nvec * k.lanes }

func main() {
	ConstraintExpr("!purego")
	ymm := []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7,
		reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15}
	zmm := []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7,
		reg.Z8, reg.Z9, reg.Z10, reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15,
		reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20, reg.Z21, reg.Z22, reg.Z23,
		reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31}
	// Each family: a tile, its two kernels (A by rows; A by columns, for
	// Aᵀ·B without packing A), its B panel packers and a function that
	// tells package kernels the tile, so the Go side never restates it.
	//
	// 6×16 with ymm: 12 accumulators + 2 B vectors + 1 broadcast = 15 of 16.
	avx2 := kernel{name: "AVX2", isa: "AVX2+FMA", lanes: 8, vec: ymm, mr: 6, nvec: 2, unroll: 4}
	// 10×32 with zmm: 20 accumulators + 2 B vectors + 1 broadcast = 23 of
	// 32. Ten rows, not the 14 that would fill the register file: batches
	// of 100 and 1000 rows then have no partial row tile, which at 100 rows
	// would waste 12 of 112 computed rows.
	avx512 := kernel{name: "AVX512", isa: "AVX-512F", lanes: 16, vec: zmm, mr: 10, nvec: 2, unroll: 4}
	// Test-only twin of the AVX-512 tile: its rows, one ymm column vector
	// (mr accumulators + 1 B vector + 1 broadcast). It runs the AVX-512
	// kernels' row addressing and tile loop on a CPU without AVX-512, so
	// the tests cover that code on this machine.
	twin := avx512
	twin.name, twin.isa, twin.lanes, twin.vec, twin.nvec = "AVX512Twin", "AVX2+FMA, test-only twin of the AVX-512 tile", 8, ymm, 1
	families := []kernel{avx2, avx512, twin}
	for _, f := range families {
		family := f.name
		f.name = "matmulKernel" + family
		gen(f)
		f.name, f.aColumns = "matmulKernel"+family+"Cols", true
		gen(f)
		genCopyRows("copyRows"+family, f.nr())
		genPerturbBlock("perturbBlock"+family, f.nr(), false)
		genPerturbBlock("perturbPairBlock"+family, f.nr(), true)
		genTransposeRows("transposeRows"+family, f.nr())
		genTile("matmulTile"+family, f)
	}
	genShortK("matmulShortKAVX2")
	genNarrow("matmulNarrowAVX2")
	Generate()
}

func aLayout(k kernel) string {
	if k.aColumns {
		return "(read by columns: A[i][p] at a[p*lda+i], the storage of Aᵀ)"
	}
	return "(row-major, row stride lda floats)"
}

// genTile generates name() (mr, nr int), the tile of one kernel family.
func genTile(name string, k kernel) {
	TEXT(name, NOSPLIT, "func() (mr, nr int)")
	Doc(fmt.Sprintf("%s returns the register tile of the %s kernels: %d rows × %d columns.", name, k.isa, k.mr, k.nr()))
	mr, nr := GP64(), GP64()
	MOVQ(U32(k.mr), mr)
	MOVQ(U32(k.nr()), nr)
	Store(mr, ReturnIndex(0))
	Store(nr, ReturnIndex(1))
	RET()
}

// genCopyRows generates name(dst, src *float32, kb, rs int), which copies kb
// rows of width floats from src (rows rs floats apart) to dst (rows
// contiguous). It only moves bits: no arithmetic, no MXCSR.
func genCopyRows(name string, width int) {
	TEXT(name, NOSPLIT, "func(dst, src *float32, kb, rs int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s copies kb rows of %d floats, rs floats apart in src, to consecutive rows of dst. Requires kb >= 1.", name, width))
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	kb := Load(Param("kb"), GP64())
	rs := Load(Param("rs"), GP64())
	SHLQ(Imm(2), rs)
	regs := []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3}
	if width%8 != 0 || width/8 > len(regs) {
		panic(fmt.Sprintf("%s: width %d", name, width))
	}
	Label(name + "_row")
	for v := 0; v < width/8; v++ {
		VMOVUPS(Mem{Base: src, Disp: 32 * v}, regs[v])
	}
	for v := 0; v < width/8; v++ {
		VMOVUPS(regs[v], Mem{Base: dst, Disp: 32 * v})
	}
	ADDQ(rs, src)
	ADDQ(U32(4*width), dst)
	DECQ(kb)
	JNZ(LabelRef(name + "_row"))
	VZEROUPPER()
	RET()
}

// genPerturbBlock generates name(dst, theta, eps *float32, kb, panels, rs
// int, s float32), or with pair name(dst, dstMinus, theta, eps *float32,
// kb, panels, rs int, s, sMinus float32) for both members of an antithetic
// pair at once (θ and the noise read once): panels whole B panels of a perturbed member, packed row
// by row. For p < kb and q < panels, dst[(q·kb + p)·width + j] =
// theta[p·rs + q·width + j] + s·eps[p·rs + q·width + j], the product rounded
// before the add, with the instructions and operand order of the
// elementwise addScaled kernel. Reading θ and the noise row
// by row keeps both streams sequential, which the hardware prefetchers
// follow; a panel at a time would read one short piece of each row, a new
// page every row or two, from memory the prefetchers cannot anticipate.
func genPerturbBlock(name string, width int, pair bool) {
	if pair {
		TEXT(name, NOSPLIT, "func(dst, dstMinus, theta, eps *float32, kb, panels, rs int, s, sMinus float32)")
	} else {
		TEXT(name, NOSPLIT, "func(dst, theta, eps *float32, kb, panels, rs int, s float32)")
	}
	Pragma("noescape")
	if pair {
		Doc(
			fmt.Sprintf("%s packs panels B panels of %d columns (kb rows each) of theta + s·eps to dst", name, width),
			"and of theta + sMinus·eps (sMinus = -s: an antithetic pair) to dstMinus, reading theta",
			"and eps (rows rs floats apart) once, row by row, each product rounded before its add,",
			"under the caller's MXCSR (Go's: IEEE). Requires kb >= 1 and panels >= 1.",
		)
	} else {
		Doc(
			fmt.Sprintf("%s packs panels B panels of %d columns (kb rows each) of theta + s·eps", name, width),
			"(rows rs floats apart in both), row by row, the product rounded before the add,",
			"under the caller's MXCSR (Go's: IEEE). Requires kb >= 1 and panels >= 1.",
		)
	}
	dst := Load(Param("dst"), GP64())
	var dstMinus reg.Register
	if pair {
		dstMinus = Load(Param("dstMinus"), GP64())
	}
	theta := Load(Param("theta"), GP64())
	eps := Load(Param("eps"), GP64())
	kb := Load(Param("kb"), GP64())
	rs := Load(Param("rs"), GP64())
	SHLQ(Imm(2), rs)
	panelBytes := GP64() // one panel: kb rows of width floats
	MOVQ(kb, panelBytes)
	SHLQ(Imm(uint64(2+log2(width))), panelBytes)
	broadcast := func(name string) reg.VecVirtual {
		p, err := Param(name).Resolve()
		if err != nil {
			panic(err)
		}
		y := YMM()
		VBROADCASTSS(p.Addr, y)
		return y
	}
	sY := broadcast("s")
	var sMinusY reg.VecVirtual
	if pair {
		sMinusY = broadcast("sMinus")
	}
	if width%8 != 0 || width/8 > 4 {
		panic(fmt.Sprintf("%s: width %d", name, width))
	}
	prod := []reg.VecVirtual{YMM(), YMM(), YMM(), YMM()}
	prodMinus := []reg.VecVirtual{YMM(), YMM(), YMM(), YMM()}
	th := []reg.VecVirtual{YMM(), YMM(), YMM(), YMM()}
	q, col, out, outMinus := GP64(), GP64(), GP64(), GP64()
	Label(name + "_row")
	Load(Param("panels"), q)
	XORQ(col, col)
	MOVQ(dst, out)
	if pair {
		MOVQ(dstMinus, outMinus)
	}
	Label(name + "_panel")
	for v := 0; v < width/8; v++ {
		e := Mem{Base: eps, Index: col, Scale: 1, Disp: 32 * v}
		VMULPS(e, sY, prod[v]) // s·eps: s is the first operand, as in Go's s*y
		VMOVUPS(Mem{Base: theta, Index: col, Scale: 1, Disp: 32 * v}, th[v])
		VADDPS(prod[v], th[v], prod[v]) // theta + s·eps: theta is the first operand
		VMOVUPS(prod[v], Mem{Base: out, Disp: 32 * v})
		if pair {
			VMULPS(e, sMinusY, prodMinus[v])
			VADDPS(prodMinus[v], th[v], prodMinus[v])
			VMOVUPS(prodMinus[v], Mem{Base: outMinus, Disp: 32 * v})
		}
	}
	ADDQ(U32(4*width), col)
	ADDQ(panelBytes, out)
	if pair {
		ADDQ(panelBytes, outMinus)
	}
	DECQ(q)
	JNZ(LabelRef(name + "_panel"))
	ADDQ(rs, theta)
	ADDQ(rs, eps)
	ADDQ(U32(4*width), dst)
	if pair {
		ADDQ(U32(4*width), dstMinus)
	}
	DECQ(kb)
	JNZ(LabelRef(name + "_row"))
	VZEROUPPER()
	RET()
}

func log2(x int) int {
	n := 0
	for 1<<n < x {
		n++
	}
	if 1<<n != x {
		panic(fmt.Sprintf("log2(%d): not a power of two", x))
	}
	return n
}

func gen(k kernel) {
	nr := k.nr()
	if k.mr*k.nvec+k.nvec+1 > len(k.vec) {
		panic(fmt.Sprintf("%s: tile %d×%d needs more than %d registers", k.name, k.mr, nr, len(k.vec)))
	}
	acc := func(r, v int) reg.VecPhysical { return k.vec[r*k.nvec+v] }
	bvec := func(v int) reg.VecPhysical { return k.vec[k.mr*k.nvec+v] }
	bcast := k.vec[k.mr*k.nvec+k.nvec]
	vbytes := 4 * k.lanes

	TEXT(k.name, NOSPLIT, "func(a, b, c *float32, kc, lda, ldc, mtiles int, mxcsr uint32)")
	Pragma("noescape")
	Doc(
		fmt.Sprintf("%s (%s) runs mtiles tiles of %d×%d. Tile t reads rows t*%d.. of A", k.name, k.isa, k.mr, nr, k.mr),
		aLayout(k)+" and the packed B panel (kc rows of",
		fmt.Sprintf("%d floats) and continues, for p < kc in increasing p, the chain", nr),
		"C[i][j] = fma(A[i][p], B[p][j], C[i][j]) of the rows of C (row stride ldc).",
		"It runs with MXCSR = mxcsr and restores the caller's MXCSR before returning.",
		"Requires kc >= 1 and mtiles >= 1.",
	)

	// Row r of the tile is read at bases[b] + r'*lda with r' in {0,1,2,4,8}:
	// one addressing mode per broadcast, with as few base registers as that
	// allows.
	lda := Load(Param("lda"), GP64())
	SHLQ(Imm(2), lda)
	type rowAddr struct {
		base  int
		scale uint8 // 0: the base itself
	}
	var rows []rowAddr
	var baseRow []int
	if k.aColumns {
		// One base: row r is at +4r, and the base moves lda per step.
		baseRow = []int{0}
		rows = make([]rowAddr, k.mr)
	}
	for r := 0; r < k.mr && !k.aColumns; r++ {
		found := false
		for bi, br := range baseRow {
			d := r - br
			if d == 0 || d == 1 || d == 2 || d == 4 || d == 8 {
				rows = append(rows, rowAddr{bi, uint8(d)})
				found = true
				break
			}
		}
		if !found {
			rows = append(rows, rowAddr{len(baseRow), 0})
			baseRow = append(baseRow, r)
		}
	}
	bases := make([]reg.GPVirtual, len(baseRow))
	for i := range bases {
		bases[i] = GP64()
	}
	aAddr := func(r, disp int) Mem {
		if k.aColumns {
			return Mem{Base: bases[0], Disp: 4 * r}
		}
		ra := rows[r]
		m := Mem{Base: bases[ra.base], Disp: disp}
		if ra.scale != 0 {
			m.Index = lda
			m.Scale = ra.scale
		}
		return m
	}

	bBase := Load(Param("b"), GP64())
	pc := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(Imm(2), ldc)
	kcArg, err := Param("kc").Resolve()
	if err != nil {
		panic(err)
	}
	saved := enterMXCSR()
	aTile := AllocLocal(8) // first row of the current tile's A
	tilesLeft := AllocLocal(8)

	tmp := GP64()
	Load(Param("a"), tmp)
	MOVQ(tmp, aTile)
	Load(Param("mtiles"), tmp)
	MOVQ(tmp, tilesLeft)

	pb := GP64()
	cnt := GP64()

	Label(k.name + "_tile")
	Comment("Point the row bases at this tile's rows of A.")
	MOVQ(aTile, bases[0])
	for i := 1; i < len(bases); i++ {
		IMUL3Q(Imm(uint64(baseRow[i])), lda, bases[i])
		ADDQ(bases[0], bases[i])
	}
	Comment("Load the tile's running sums from C.")
	MOVQ(pc, cnt)
	for r := 0; r < k.mr; r++ {
		for v := 0; v < k.nvec; v++ {
			VMOVUPS(Mem{Base: cnt, Disp: v * vbytes}, acc(r, v))
		}
		if r < k.mr-1 {
			ADDQ(ldc, cnt)
		}
	}
	Comment("Prefetch the next tile's rows of C: loading them cold would stall the tile.")
	for r := 0; r < k.mr; r++ {
		ADDQ(ldc, cnt)
		for off := 0; off < nr*4; off += 64 {
			PREFETCHT0(Mem{Base: cnt, Disp: off})
		}
		PREFETCHT0(Mem{Base: cnt, Disp: nr*4 - 4})
	}
	MOVQ(bBase, pb)
	MOVQ(kcArg.Addr, cnt)

	step := func(u int) {
		for v := 0; v < k.nvec; v++ {
			VMOVUPS(Mem{Base: pb, Disp: (u*nr + v*k.lanes) * 4}, bvec(v))
		}
		for r := 0; r < k.mr; r++ {
			VBROADCASTSS(aAddr(r, 4*u), bcast)
			for v := 0; v < k.nvec; v++ {
				VFMADD231PS(bvec(v), bcast, acc(r, v))
			}
		}
		if k.aColumns {
			ADDQ(lda, bases[0])
		}
	}
	advance := func(steps int) {
		for _, b := range bases {
			if k.aColumns {
				continue // moved by step
			}
			ADDQ(U32(4*steps), b)
		}
		ADDQ(U32(steps*nr*4), pb)
	}

	Comment(fmt.Sprintf("Main loop: %d k steps per iteration.", k.unroll))
	CMPQ(cnt, Imm(uint64(k.unroll)))
	JB(LabelRef(k.name + "_tail"))
	Label(k.name + "_body")
	for u := 0; u < k.unroll; u++ {
		step(u)
	}
	advance(k.unroll)
	SUBQ(Imm(uint64(k.unroll)), cnt)
	CMPQ(cnt, Imm(uint64(k.unroll)))
	JAE(LabelRef(k.name + "_body"))

	Label(k.name + "_tail")
	TESTQ(cnt, cnt)
	JZ(LabelRef(k.name + "_store"))
	step(0)
	advance(1)
	DECQ(cnt)
	JMP(LabelRef(k.name + "_tail"))

	Label(k.name + "_store")
	Comment("Store the sums; the next tile starts mr rows down in A and C.")
	for r := 0; r < k.mr; r++ {
		for v := 0; v < k.nvec; v++ {
			VMOVUPS(acc(r, v), Mem{Base: pc, Disp: v * vbytes})
		}
		ADDQ(ldc, pc)
	}
	if k.aColumns {
		ADDQ(U32(4*k.mr), aTile)
	} else {
		IMUL3Q(Imm(uint64(k.mr)), lda, tmp)
		ADDQ(tmp, aTile)
	}
	DECQ(tilesLeft)
	JNZ(LabelRef(k.name + "_tile"))

	LDMXCSR(saved)
	VZEROUPPER()
	RET()
}

// genTransposeRows generates name(dst, src *float32, groups, cs int): for
// g < groups, p < 8 and j < width, dst[(8g+p)*width + j] = src[j*cs + 8g+p].
// That packs a B panel from the storage of Bᵀ (column j of B contiguous, cs
// floats apart) with one 8×8 transpose per 8 columns and 8 k steps. It only
// moves bits: no arithmetic, no MXCSR.
func genTransposeRows(name string, width int) {
	if width%8 != 0 {
		panic(fmt.Sprintf("%s: width %d", name, width))
	}
	TEXT(name, NOSPLIT, "func(dst, src *float32, groups, cs int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s packs 8*groups rows of a %d-wide B panel from columns cs floats apart: dst[(8g+p)*%d+j] = src[j*cs+8g+p]. Requires groups >= 1.", name, width, width))
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	groups := Load(Param("groups"), GP64())
	cs4 := Load(Param("cs"), GP64())
	SHLQ(Imm(2), cs4)
	cs3 := GP64() // 3 columns
	LEAQ(Mem{Base: cs4, Index: cs4, Scale: 2}, cs3)
	cs32 := GP64() // 8 columns
	MOVQ(cs4, cs32)
	SHLQ(Imm(3), cs32)
	rowp, row4 := GP64(), GP64()
	in := []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7}
	tmp := []reg.VecPhysical{reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15}

	Label(name + "_group")
	MOVQ(src, rowp)
	for jb := 0; jb < width/8; jb++ {
		if jb > 0 {
			ADDQ(cs32, rowp)
		}
		LEAQ(Mem{Base: rowp, Index: cs4, Scale: 4}, row4)
		Comment(fmt.Sprintf("Columns %d..%d, 8 k steps each.", 8*jb, 8*jb+7))
		for q := 0; q < 8; q++ {
			base := rowp
			if q >= 4 {
				base = row4
			}
			m := Mem{Base: base}
			switch q % 4 {
			case 1:
				m.Index, m.Scale = cs4, 1
			case 2:
				m.Index, m.Scale = cs4, 2
			case 3:
				m.Index, m.Scale = cs3, 1
			}
			VMOVUPS(m, in[q])
		}
		// t: interleave column pairs; s: gather 4 columns; o: join halves.
		for q := 0; q < 8; q += 2 {
			VUNPCKLPS(in[q+1], in[q], tmp[q])
			VUNPCKHPS(in[q+1], in[q], tmp[q+1])
		}
		for h := 0; h < 2; h++ { // columns 0-3, then 4-7
			t0, t1, t2, t3 := tmp[4*h], tmp[4*h+1], tmp[4*h+2], tmp[4*h+3]
			VSHUFPS(Imm(0x44), t2, t0, in[4*h])
			VSHUFPS(Imm(0xEE), t2, t0, in[4*h+1])
			VSHUFPS(Imm(0x44), t3, t1, in[4*h+2])
			VSHUFPS(Imm(0xEE), t3, t1, in[4*h+3])
		}
		for q := 0; q < 4; q++ {
			VPERM2F128(Imm(0x20), in[4+q], in[q], tmp[q])
			VPERM2F128(Imm(0x31), in[4+q], in[q], tmp[4+q])
		}
		for q := 0; q < 8; q++ {
			VMOVUPS(tmp[q], Mem{Base: dst, Disp: 4 * (q*width + 8*jb)})
		}
	}
	ADDQ(Imm(32), src)
	ADDQ(U32(4*8*width), dst)
	DECQ(groups)
	JNZ(LabelRef(name + "_group"))
	VZEROUPPER()
	RET()
}

// enterMXCSR saves the caller's MXCSR in a frame slot (8 bytes: STMXCSR
// writes 4, 8 keeps the frame aligned) and loads the argument mxcsr; the
// slot is what LDMXCSR restores on exit.
func enterMXCSR() Mem {
	mx, err := Param("mxcsr").Resolve()
	if err != nil {
		panic(err)
	}
	saved := AllocLocal(8)
	Comment("Enter the environment's denormal mode; the caller's is restored on exit.")
	STMXCSR(saved)
	LDMXCSR(mx.Addr)
	return saved
}

// rowMajorOperands loads the small-shape kernels' A and C pointers and the
// row strides of A, B and C, turned into bytes.
func rowMajorOperands() (a, c, lda, ldb, ldc reg.Register) {
	a = Load(Param("a"), GP64())
	c = Load(Param("c"), GP64())
	lda = Load(Param("lda"), GP64())
	ldb = Load(Param("ldb"), GP64())
	ldc = Load(Param("ldc"), GP64())
	SHLQ(Imm(2), lda)
	SHLQ(Imm(2), ldb)
	SHLQ(Imm(2), ldc)
	return a, c, lda, ldb, ldc
}

// genShortK generates name(a, b, c *float32, m, n, k, lda, ldb, ldc int,
// mxcsr uint32): the product for a short chain, k of at most a few steps
// (the rank of a low-rank perturbation). For each row of C it continues
// every element's chain over p < k, c[i][j] = fma(a[i][p], b[p][j],
// c[i][j]) in increasing p, 32 columns at a time in four ymm sums, then 8,
// then one (scalar FMA). B is read in place (row stride ldb): k rows of B
// stay in L1, so there is nothing to pack.
func genShortK(name string) {
	TEXT(name, NOSPLIT, "func(a, b, c *float32, m, n, k, lda, ldb, ldc int, mxcsr uint32)")
	Pragma("noescape")
	Doc(
		fmt.Sprintf("%s continues, for each of m rows and n columns of C (row stride ldc), the", name),
		"chain C[i][j] = fma(A[i][p], B[p][j], C[i][j]) for p < k in increasing p, A and B",
		"row-major (row strides lda, ldb), without packing: for short chains.",
		"It runs with MXCSR = mxcsr and restores the caller's MXCSR before returning.",
		"Requires m, n, k >= 1.",
	)
	a, c, lda, ldb, ldc := rowMajorOperands()
	saved := enterMXCSR()
	rowsLeft := AllocLocal(8)
	tmp := GP64()
	Load(Param("m"), tmp)
	MOVQ(tmp, rowsLeft)

	n := GP64()
	j := GP64()  // column index
	bp := GP64() // B[p][j]
	ap := GP64() // A[i][p]
	p := GP64()  // steps left
	end32, end8 := GP64(), GP64()
	Load(Param("n"), n)
	MOVQ(n, end32)
	ANDQ(I32(-32), end32)
	MOVQ(n, end8)
	ANDQ(I32(-8), end8)

	sums := []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3}
	bcast := reg.Y4
	Label(name + "_row")
	XORQ(j, j)
	// pass: columns in blocks of vecs×lanes while j < end.
	pass := func(label string, end reg.Register, vecs, lanes int) {
		Label(label)
		CMPQ(j, end)
		JAE(LabelRef(label + "_done"))
		for v := 0; v < vecs; v++ {
			m := Mem{Base: c, Index: j, Scale: 4, Disp: 4 * lanes * v}
			if lanes == 1 {
				VMOVSS(m, sums[v].AsX())
			} else {
				VMOVUPS(m, sums[v])
			}
		}
		Load(Param("b"), bp)
		LEAQ(Mem{Base: bp, Index: j, Scale: 4}, bp)
		MOVQ(a, ap)
		Load(Param("k"), p)
		Label(label + "_step")
		for v := 0; v < vecs; v++ {
			m := Mem{Base: bp, Disp: 4 * lanes * v}
			if lanes == 1 {
				if v == 0 {
					VMOVSS(Mem{Base: ap}, bcast.AsX())
				}
				VFMADD231SS(m, bcast.AsX(), sums[v].AsX())
			} else {
				if v == 0 {
					VBROADCASTSS(Mem{Base: ap}, bcast)
				}
				VFMADD231PS(m, bcast, sums[v])
			}
		}
		ADDQ(Imm(4), ap)
		ADDQ(ldb, bp)
		DECQ(p)
		JNZ(LabelRef(label + "_step"))
		for v := 0; v < vecs; v++ {
			m := Mem{Base: c, Index: j, Scale: 4, Disp: 4 * lanes * v}
			if lanes == 1 {
				VMOVSS(sums[v].AsX(), m)
			} else {
				VMOVUPS(sums[v], m)
			}
		}
		ADDQ(U32(vecs*lanes), j)
		JMP(LabelRef(label))
		Label(label + "_done")
	}
	pass(name+"_cols32", end32, 4, 8)
	pass(name+"_cols8", end8, 1, 8)
	pass(name+"_cols1", n, 1, 1)
	ADDQ(lda, a)
	ADDQ(ldc, c)
	DECQ(rowsLeft)
	JNZ(LabelRef(name + "_row"))

	LDMXCSR(saved)
	VZEROUPPER()
	RET()
}

// genNarrow generates name(a, b, c *float32, m, k, lda, ldb, ldc int,
// mask *uint32, mxcsr uint32): the product with at most 4 columns (x·A of
// a low-rank perturbation). Each row's chains run in the lanes of one xmm
// register, C[i][0..n) = fma(A[i][p], B[p][0..n), C[i][0..n)) for p < k in
// increasing p, eight rows at a time so that eight chains hide the FMA
// latency (then four, then one); the columns n..3 are masked off in every load and store of B and
// C (mask: n lanes of all ones, then zeros).
func genNarrow(name string) {
	TEXT(name, NOSPLIT, "func(a, b, c *float32, m, k, lda, ldb, ldc int, mask *uint32, mxcsr uint32)")
	Pragma("noescape")
	Doc(
		fmt.Sprintf("%s continues, for each of m rows of C (row stride ldc) and the n <= 4", name),
		"columns that mask selects (n lanes of all ones), the chain",
		"C[i][j] = fma(A[i][p], B[p][j], C[i][j]) for p < k in increasing p, A and B",
		"row-major (row strides lda, ldb), one row's chains in the lanes of an xmm register.",
		"It runs with MXCSR = mxcsr and restores the caller's MXCSR before returning.",
		"Requires m, k >= 1.",
	)
	a, c, lda, ldb, ldc := rowMajorOperands()
	mk := Load(Param("mask"), GP64())
	mask := reg.X15
	VMOVDQU(Mem{Base: mk}, mask)
	saved := enterMXCSR()

	m := GP64()
	Load(Param("m"), m)
	bp, p := GP64(), GP64()
	bvec, bcast := reg.X8, reg.X9
	sums := []reg.VecPhysical{reg.X0, reg.X1, reg.X2, reg.X3, reg.X4, reg.X5, reg.X6, reg.X7}
	// Rows q of a group are at base[q/3] + (q%3)·lda.
	bases := []reg.GPVirtual{GP64(), GP64(), GP64()}
	row := func(q int) Mem {
		mm := Mem{Base: bases[q/3]}
		if q%3 != 0 {
			mm.Index, mm.Scale = lda, uint8(q%3)
		}
		return mm
	}
	cp := GP64()
	// group emits rows rows at a time (8, 4, then 1) while m >= rows.
	group := func(label string, rows int) {
		Label(label)
		CMPQ(m, Imm(uint64(rows)))
		JB(LabelRef(label + "_done"))
		MOVQ(c, cp)
		for q := 0; q < rows; q++ {
			VMASKMOVPS(Mem{Base: cp}, mask, sums[q])
			if q < rows-1 {
				ADDQ(ldc, cp)
			}
		}
		MOVQ(a, bases[0])
		for bi := 1; bi < len(bases) && 3*bi < rows; bi++ {
			IMUL3Q(Imm(uint64(3*bi)), lda, bases[bi])
			ADDQ(a, bases[bi])
		}
		Load(Param("b"), bp)
		Load(Param("k"), p)
		Label(label + "_step")
		VMASKMOVPS(Mem{Base: bp}, mask, bvec)
		for q := 0; q < rows; q++ {
			VBROADCASTSS(row(q), bcast)
			VFMADD231PS(bvec, bcast, sums[q])
		}
		for bi := 0; bi < len(bases) && 3*bi < rows; bi++ {
			ADDQ(Imm(4), bases[bi])
		}
		ADDQ(ldb, bp)
		DECQ(p)
		JNZ(LabelRef(label + "_step"))
		MOVQ(c, cp)
		for q := 0; q < rows; q++ {
			VMASKMOVPS(sums[q], mask, Mem{Base: cp})
			if q < rows-1 {
				ADDQ(ldc, cp)
			}
		}
		for q := 0; q < rows; q++ {
			ADDQ(lda, a)
			ADDQ(ldc, c)
		}
		SUBQ(Imm(uint64(rows)), m)
		JMP(LabelRef(label))
		Label(label + "_done")
	}
	group(name+"_rows8", 8)
	group(name+"_rows4", 4)
	group(name+"_rows1", 1)

	LDMXCSR(saved)
	VZEROUPPER()
	RET()
}
