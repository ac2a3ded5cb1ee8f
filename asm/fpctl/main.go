// Command fpctl generates kernels/internal/fpctl/fpctl_gen_amd64.s: the two
// routines that read and load the calling thread's MXCSR, which the tests
// of package kernels and of its probes use to prove that every assembly
// routine restores the caller's control register.
package main

import (
	. "github.com/mmcloughlin/avo/build"
)

//go:generate go run . -out ../../kernels/internal/fpctl/fpctl_gen_amd64.s -stubs ../../kernels/internal/fpctl/fpctl_gen_amd64.go -pkg fpctl

func main() {
	ConstraintExpr("!purego")

	TEXT("MXCSR", NOSPLIT, "func() uint32")
	Doc("MXCSR returns the calling thread's MXCSR (for tests).")
	m := AllocLocal(8)
	STMXCSR(m)
	r := GP32()
	MOVL(m, r)
	Store(r, ReturnIndex(0))
	RET()

	TEXT("SetMXCSR", NOSPLIT, "func(v uint32)")
	Doc("SetMXCSR loads v into the calling thread's MXCSR (for tests).")
	v, err := Param("v").Resolve()
	if err != nil {
		panic(err)
	}
	LDMXCSR(v.Addr)
	RET()

	Generate()
}
