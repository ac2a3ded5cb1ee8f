// Command elementwise generates the amd64 elementwise kernels of package
// kernels: the bias add, and the bias add followed by a scaling, over the
// rows of a matrix. They exist because a network layer's elementwise pass
// is, after the product, the largest cost of a forward pass, and the exact
// portable Go loop is scalar.
//
// The third kernel, x + s·y with two roundings, perturbs parameters and
// accumulates noise in evolution strategies. The fourth folds several of
// those accumulations into one pass: the update of evolution strategies
// sums every pair's weighted noise, acc = fl(acc + fl(w_p·ε_p)) in pair
// order, and streaming several noise slices while acc stays in registers
// reads and writes acc once per call instead of once per pair. The fifth is
// Adam's update, the largest cost of a backprop step after the products; it
// runs in the caller's MXCSR (the Go ABI's IEEE), as the Go loop does.
//
// They are exact by construction: MXCSR is set to the environment's value on
// entry and the caller's restored on exit, and each element is one native
// add (and one native multiply), which is what the environment means on x86.
// The two roundings stay separate: the sum is rounded (and flushed) before
// it is scaled. Vectors of 8 are VEX-encoded AVX; the row's tail uses the
// scalar forms of the same instructions, which honour MXCSR the same way.
package main

//go:generate go run . -out ../../kernels/elementwise_gen_amd64.s -stubs ../../kernels/elementwise_gen_amd64.go -pkg kernels

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func main() {
	ConstraintExpr("!purego")
	genRows("biasAddRowsAVX", false)
	genRows("biasAddScaleRowsAVX", true)
	genAddScaled("addScaledAVX")
	genAdam("adamAVX", false)
	genAdam("adamDecayAVX", true)
	genWeightedSum("weightedSumAVX")
	Generate()
}

// broadcastParam loads the float32 parameter name into every lane of a
// ymm register and into the low lane of an xmm register (for the tail).
func broadcastParam(name string) (y, x reg.VecVirtual) {
	p, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	y, x = YMM(), XMM()
	VBROADCASTSS(p.Addr, y)
	VMOVSS(p.Addr, x)
	return y, x
}

// enterMXCSR saves the caller's MXCSR in the frame and loads the mxcsr
// parameter; LDMXCSR of the returned slot restores the caller's.
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

// roundDown8 returns a register holding n rounded down to a multiple of 8,
// where elementLoop's vector part ends.
func roundDown8(n reg.Register) reg.Register {
	r := GP64()
	MOVQ(n, r)
	ANDQ(I32(-8), r)
	return r
}

// elementLoop emits the loop over i in [0, n): eight elements at a time
// (vector) while i < vecEnd (roundDown8(n)), then one at a time (scalar).
// Labels are prefix_vec, prefix_tail and prefix_done.
func elementLoop(prefix string, n, vecEnd reg.Register, vector, scalar func(i reg.GPVirtual)) {
	i := GP64()
	XORQ(i, i)
	CMPQ(i, vecEnd)
	JAE(LabelRef(prefix + "_tail"))
	Label(prefix + "_vec")
	vector(i)
	ADDQ(Imm(8), i)
	CMPQ(i, vecEnd)
	JB(LabelRef(prefix + "_vec"))
	Label(prefix + "_tail")
	CMPQ(i, n)
	JAE(LabelRef(prefix + "_done"))
	scalar(i)
	INCQ(i)
	JMP(LabelRef(prefix + "_tail"))
	Label(prefix + "_done")
}

// genRows generates name(dst, src, bias *float32, rows, cols int,
// [scale float32,] mxcsr uint32): for each of rows rows of cols floats,
// dst[j] = src[j] + bias[j] (times scale), rows stored contiguously.
func genRows(name string, scaled bool) {
	sig := "func(dst, src, bias *float32, rows, cols int, mxcsr uint32)"
	what := "src[j] + bias[j]"
	if scaled {
		sig = "func(dst, src, bias *float32, rows, cols int, scale float32, mxcsr uint32)"
		what = "(src[j] + bias[j]) · scale, the sum rounded first"
	}
	TEXT(name, NOSPLIT, sig)
	Pragma("noescape")
	Doc(
		fmt.Sprintf("%s writes, for each of rows consecutive rows of cols floats,", name),
		fmt.Sprintf("dst[j] = %s, with MXCSR = mxcsr; the", what),
		"caller's MXCSR is restored before returning. dst may be src.",
		"Requires rows >= 1 and cols >= 1.",
	)
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	bias := Load(Param("bias"), GP64())
	rows := Load(Param("rows"), GP64())
	cols := Load(Param("cols"), GP64())
	var scaleY, scaleX reg.VecVirtual
	if scaled {
		scaleY, scaleX = broadcastParam("scale")
	}
	vecEnd := roundDown8(cols)
	saved := enterMXCSR()

	y, x := YMM(), XMM()
	Label(name + "_row")
	elementLoop(name, cols, vecEnd, func(j reg.GPVirtual) {
		VMOVUPS(Mem{Base: src, Index: j, Scale: 4}, y)
		VADDPS(Mem{Base: bias, Index: j, Scale: 4}, y, y) // src + bias: src is the first operand, as in Go's a + b
		if scaled {
			VMULPS(scaleY, y, y)
		}
		VMOVUPS(y, Mem{Base: dst, Index: j, Scale: 4})
	}, func(j reg.GPVirtual) {
		VMOVSS(Mem{Base: src, Index: j, Scale: 4}, x)
		VADDSS(Mem{Base: bias, Index: j, Scale: 4}, x, x)
		if scaled {
			VMULSS(scaleX, x, x)
		}
		VMOVSS(x, Mem{Base: dst, Index: j, Scale: 4})
	})
	LEAQ(Mem{Base: src, Index: cols, Scale: 4}, src)
	LEAQ(Mem{Base: dst, Index: cols, Scale: 4}, dst)
	DECQ(rows)
	JNZ(LabelRef(name + "_row"))

	LDMXCSR(saved)
	VZEROUPPER()
	RET()
}

// genAddScaled generates name(dst, x, y *float32, n int, s float32,
// mxcsr uint32): dst[i] = x[i] + s·y[i] for i < n, the product rounded
// before the add (never fused).
func genAddScaled(name string) {
	TEXT(name, NOSPLIT, "func(dst, x, y *float32, n int, s float32, mxcsr uint32)")
	Pragma("noescape")
	Doc(
		fmt.Sprintf("%s writes dst[i] = x[i] + s·y[i] for i < n, the product rounded", name),
		"before the add, with MXCSR = mxcsr; the caller's MXCSR is restored",
		"before returning. dst may be x or y. Requires n >= 1.",
	)
	dst := Load(Param("dst"), GP64())
	x := Load(Param("x"), GP64())
	y := Load(Param("y"), GP64())
	n := Load(Param("n"), GP64())
	sY, sX := broadcastParam("s")
	vecEnd := roundDown8(n)
	saved := enterMXCSR()

	p, q, xv, xs := YMM(), XMM(), YMM(), XMM()
	elementLoop(name, n, vecEnd, func(i reg.GPVirtual) {
		VMULPS(Mem{Base: y, Index: i, Scale: 4}, sY, p) // s·y: s is the first operand, as in Go's s*y
		VMOVUPS(Mem{Base: x, Index: i, Scale: 4}, xv)
		VADDPS(p, xv, p) // x + s·y: x is the first operand, as in Go
		VMOVUPS(p, Mem{Base: dst, Index: i, Scale: 4})
	}, func(i reg.GPVirtual) {
		VMULSS(Mem{Base: y, Index: i, Scale: 4}, sX, q)
		VMOVSS(Mem{Base: x, Index: i, Scale: 4}, xs)
		VADDSS(q, xs, q)
		VMOVSS(q, Mem{Base: dst, Index: i, Scale: 4})
	})

	LDMXCSR(saved)
	VZEROUPPER()
	RET()
}

// genAdam generates name(p, grad, m, v *float32, n int, b1, b2, c1, c2, eps,
// [decay,] step float32): Adam's update of n parameters, in the caller's
// MXCSR (the Go ABI's: IEEE, round to nearest), each element
//
//	m = b1·m + c1·g
//	v = b2·v + c2·(g·g)
//	p = p − decay·p                  (the decayed form only)
//	p = p − (step·m) / (sqrt(v) + eps)
//
// with every product, quotient, root and sum rounded on its own (no FMA).
// The vector part keeps the constants broadcast in ymm registers; the
// scalar tail reads them from the arguments, so that no more than the 16
// VEX registers are needed.
func genAdam(name string, decayed bool) {
	sig := "func(p, grad, m, v *float32, n int, b1, b2, c1, c2, eps, step float32)"
	if decayed {
		sig = "func(p, grad, m, v *float32, n int, b1, b2, c1, c2, eps, decay, step float32)"
	}
	TEXT(name, NOSPLIT, sig)
	Pragma("noescape")
	doc := []string{
		fmt.Sprintf("%s applies Adam's update to p[i], m[i], v[i] for i < n:", name),
		"m = b1·m + c1·grad, v = b2·v + c2·(grad·grad),",
	}
	if decayed {
		doc = append(doc, "p = p − decay·p,")
	}
	Doc(append(doc, "p = p − (step·m)/(sqrt(v) + eps), each operation rounded on its own,",
		"in the caller's MXCSR. Requires n >= 1.")...)
	pp := Load(Param("p"), GP64())
	gp := Load(Param("grad"), GP64()) // not g: that names the goroutine register in Go assembly
	mp := Load(Param("m"), GP64())
	vp := Load(Param("v"), GP64())
	n := Load(Param("n"), GP64())
	names := []string{"b1", "b2", "c1", "c2", "eps", "step"}
	if decayed {
		names = append(names, "decay")
	}
	vecK, scaK := map[string]Op{}, map[string]Op{}
	for _, k := range names {
		p, err := Param(k).Resolve()
		if err != nil {
			panic(err)
		}
		y := YMM()
		VBROADCASTSS(p.Addr, y)
		vecK[k], scaK[k] = y, p.Addr
	}
	vecEnd := roundDown8(n)

	// One element: the same sequence for 8 lanes (ps) and 1 (ss). In the
	// helpers a and b are the operands of a − b, a/b, a·b and a + b; b
	// may be a constant (a register or, in the tail, the argument).
	type ops struct {
		load, store        func(mem Mem, r reg.VecVirtual)
		mul, add, sub, div func(a reg.VecVirtual, b Op, dst reg.VecVirtual)
		sqrt               func(a, dst reg.VecVirtual)
		newReg             func() reg.VecVirtual
		k                  map[string]Op
	}
	body := func(o ops, i reg.GPVirtual) {
		at := func(base reg.Register) Mem { return Mem{Base: base, Index: i, Scale: 4} }
		g, mv, vv, t, pv, s := o.newReg(), o.newReg(), o.newReg(), o.newReg(), o.newReg(), o.newReg()
		o.load(at(gp), g)
		// m = float32(b1*m) + float32(c1*g)
		o.load(at(mp), mv)
		o.mul(mv, o.k["b1"], mv)
		o.mul(g, o.k["c1"], t)
		o.add(mv, t, mv)
		o.store(at(mp), mv)
		// v = float32(b2*v) + float32(c2*float32(g*g))
		o.load(at(vp), vv)
		o.mul(vv, o.k["b2"], vv)
		o.mul(g, g, t)
		o.mul(t, o.k["c2"], t)
		o.add(vv, t, vv)
		o.store(at(vp), vv)
		o.load(at(pp), pv)
		if decayed {
			// p -= float32(decay * p)
			o.mul(pv, o.k["decay"], t)
			o.sub(pv, t, pv)
		}
		// p = p - float32(step*m)/(float32(sqrt(v)) + eps)
		o.sqrt(vv, s)
		o.add(s, o.k["eps"], s)
		o.mul(mv, o.k["step"], t)
		o.div(t, s, t)
		o.sub(pv, t, pv)
		o.store(at(pp), pv)
	}
	// Avo's operand order is Intel's reversed: VSUBPS b, a, dst is a − b.
	vec := ops{
		load:   func(mem Mem, r reg.VecVirtual) { VMOVUPS(mem, r) },
		store:  func(mem Mem, r reg.VecVirtual) { VMOVUPS(r, mem) },
		mul:    func(a reg.VecVirtual, b Op, dst reg.VecVirtual) { VMULPS(b, a, dst) },
		add:    func(a reg.VecVirtual, b Op, dst reg.VecVirtual) { VADDPS(b, a, dst) },
		sub:    func(a reg.VecVirtual, b Op, dst reg.VecVirtual) { VSUBPS(b, a, dst) },
		div:    func(a reg.VecVirtual, b Op, dst reg.VecVirtual) { VDIVPS(b, a, dst) },
		sqrt:   func(a, dst reg.VecVirtual) { VSQRTPS(a, dst) },
		newReg: func() reg.VecVirtual { return YMM() },
		k:      vecK,
	}
	sca := ops{
		load:   func(mem Mem, r reg.VecVirtual) { VMOVSS(mem, r) },
		store:  func(mem Mem, r reg.VecVirtual) { VMOVSS(r, mem) },
		mul:    func(a reg.VecVirtual, b Op, dst reg.VecVirtual) { VMULSS(b, a, dst) },
		add:    func(a reg.VecVirtual, b Op, dst reg.VecVirtual) { VADDSS(b, a, dst) },
		sub:    func(a reg.VecVirtual, b Op, dst reg.VecVirtual) { VSUBSS(b, a, dst) },
		div:    func(a reg.VecVirtual, b Op, dst reg.VecVirtual) { VDIVSS(b, a, dst) },
		sqrt:   func(a, dst reg.VecVirtual) { VSQRTSS(a, a, dst) },
		newReg: func() reg.VecVirtual { return XMM() },
		k:      scaK,
	}
	elementLoop(name, n, vecEnd, func(i reg.GPVirtual) { body(vec, i) }, func(i reg.GPVirtual) { body(sca, i) })
	VZEROUPPER()
	RET()
}

// genWeightedSum generates name(acc *float32, n int, eps **float32,
// w *float32, pairs int, mxcsr uint32): for i < n and p = 0, 1, ...,
// pairs-1 in that order, acc[i] = acc[i] + w[p]·eps[p][i], the product
// rounded before the add: the bits of pairs successive addScaled calls
// (acc, acc, eps[p], w[p]), with acc held in registers across the pairs.
// Blocks of 32 elements (four ymm sums), then of 8, then one at a time.
func genWeightedSum(name string) {
	TEXT(name, NOSPLIT, "func(acc *float32, n int, eps **float32, w *float32, pairs int, mxcsr uint32)")
	Pragma("noescape")
	Doc(
		fmt.Sprintf("%s adds, for p = 0 .. pairs-1 in order, w[p]·eps[p][i] to acc[i] for i < n,", name),
		"each product rounded before its add (the bits of pairs addScaled calls on",
		"acc), with MXCSR = mxcsr; the caller's MXCSR is restored before",
		"returning. Requires n >= 1 and pairs >= 1.",
	)
	acc := Load(Param("acc"), GP64())
	n := Load(Param("n"), GP64())
	eps := Load(Param("eps"), GP64())
	w := Load(Param("w"), GP64())
	pairs := Load(Param("pairs"), GP64())
	saved := enterMXCSR()

	i := GP64()
	XORQ(i, i)
	// pass emits one loop over blocks of `lanes` elements (1: scalar) in
	// `vecs` registers while i < end.
	pass := func(label string, end reg.Register, vecs, lanes int) {
		sums := make([]reg.VecVirtual, vecs)
		prods := make([]reg.VecVirtual, vecs)
		for v := range sums {
			if lanes == 1 {
				sums[v], prods[v] = XMM(), XMM()
			} else {
				sums[v], prods[v] = YMM(), YMM()
			}
		}
		wv := YMM()
		wx := XMM()
		width := vecs * lanes
		Label(label)
		CMPQ(i, end)
		JAE(LabelRef(label + "_done"))
		for v := range sums {
			m := Mem{Base: acc, Index: i, Scale: 4, Disp: 4 * lanes * v}
			if lanes == 1 {
				VMOVSS(m, sums[v])
			} else {
				VMOVUPS(m, sums[v])
			}
		}
		p, ptr := GP64(), GP64()
		XORQ(p, p)
		Label(label + "_pair")
		MOVQ(Mem{Base: eps, Index: p, Scale: 8}, ptr)
		for v := range sums {
			m := Mem{Base: ptr, Index: i, Scale: 4, Disp: 4 * lanes * v}
			if lanes == 1 {
				if v == 0 {
					VMOVSS(Mem{Base: w, Index: p, Scale: 4}, wx)
				}
				VMULSS(m, wx, prods[v])            // w·eps: w is the first operand, as in Go's s*y
				VADDSS(prods[v], sums[v], sums[v]) // acc + w·eps: acc is the first operand
			} else {
				if v == 0 {
					VBROADCASTSS(Mem{Base: w, Index: p, Scale: 4}, wv)
				}
				VMULPS(m, wv, prods[v])
				VADDPS(prods[v], sums[v], sums[v])
			}
		}
		INCQ(p)
		CMPQ(p, pairs)
		JB(LabelRef(label + "_pair"))
		for v := range sums {
			m := Mem{Base: acc, Index: i, Scale: 4, Disp: 4 * lanes * v}
			if lanes == 1 {
				VMOVSS(sums[v], m)
			} else {
				VMOVUPS(sums[v], m)
			}
		}
		ADDQ(U32(width), i)
		JMP(LabelRef(label))
		Label(label + "_done")
	}
	end32, end8 := GP64(), roundDown8(n)
	MOVQ(n, end32)
	ANDQ(I32(-32), end32)
	pass(name+"_blocks32", end32, 4, 8)
	pass(name+"_blocks8", end8, 1, 8)
	pass(name+"_scalar", n, 1, 1)

	LDMXCSR(saved)
	VZEROUPPER()
	RET()
}
