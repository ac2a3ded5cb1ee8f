//go:build !purego

// Hand-written arm64 hardware probes (Avo has no arm64 backend). Each routine
//
//	func(fpcr uint64, dst, a, b, c []float32)
//
// computes dst[i] = op(a[i], b[i], c[i]) for i < len(dst) under FPCR = fpcr
// and restores the caller's FPCR before it returns: the Go ABI requires
// FZ/AH/FIZ = 0 at calls. len(dst) is a multiple of the lanes (1 for the
// scalar unit, 4 for NEON .4S), and a, b (and c for fma, mul_add) are at
// least as long; probe_units_arm64.go guarantees both.
//
// Go's assembler has no vector FMUL/FADD/FDIV: they are WORDs, with the
// instruction in the comment (encodings checked with aarch64-linux-gnu-as).

#include "textflag.h"

// R7 holds the caller's FPCR; R0 dst, R1 a, R2 b, R4 c; R3 counts lanes left.
#define PROLOGUE \
	MRS  FPCR, R7; \
	MOVD fpcr+0(FP), R6; \
	MSR  R6, FPCR; \
	MOVD dst_base+8(FP), R0; \
	MOVD dst_len+16(FP), R3; \
	MOVD a_base+32(FP), R1; \
	MOVD b_base+56(FP), R2; \
	MOVD c_base+80(FP), R4

#define EPILOGUE \
	MSR R7, FPCR; \
	RET

// func probeMulScalar(fpcr uint64, dst, a, b, c []float32)
TEXT ·probeMulScalar(SB), NOSPLIT, $0-104
	PROLOGUE
loop:
	CBZ     R3, done
	FMOVS.P 4(R1), F0
	FMOVS.P 4(R2), F1
	FMULS   F1, F0, F0 // F0 = F0 * F1
	FMOVS.P F0, 4(R0)
	SUB     $1, R3
	B       loop
done:
	EPILOGUE

// func probeAddScalar(fpcr uint64, dst, a, b, c []float32)
TEXT ·probeAddScalar(SB), NOSPLIT, $0-104
	PROLOGUE
loop:
	CBZ     R3, done
	FMOVS.P 4(R1), F0
	FMOVS.P 4(R2), F1
	FADDS   F1, F0, F0 // F0 = F0 + F1
	FMOVS.P F0, 4(R0)
	SUB     $1, R3
	B       loop
done:
	EPILOGUE

// func probeDivScalar(fpcr uint64, dst, a, b, c []float32)
TEXT ·probeDivScalar(SB), NOSPLIT, $0-104
	PROLOGUE
loop:
	CBZ     R3, done
	FMOVS.P 4(R1), F0
	FMOVS.P 4(R2), F1
	FDIVS   F1, F0, F0 // F0 = F0 / F1
	FMOVS.P F0, 4(R0)
	SUB     $1, R3
	B       loop
done:
	EPILOGUE

// func probeFMAScalar(fpcr uint64, dst, a, b, c []float32)
TEXT ·probeFMAScalar(SB), NOSPLIT, $0-104
	PROLOGUE
loop:
	CBZ     R3, done
	FMOVS.P 4(R1), F0
	FMOVS.P 4(R2), F1
	FMOVS.P 4(R4), F2
	FMADDS  F1, F2, F0, F3 // F3 = F2 + F0*F1, one rounding
	FMOVS.P F3, 4(R0)
	SUB     $1, R3
	B       loop
done:
	EPILOGUE

// func probeMulAddScalar(fpcr uint64, dst, a, b, c []float32)
TEXT ·probeMulAddScalar(SB), NOSPLIT, $0-104
	PROLOGUE
loop:
	CBZ     R3, done
	FMOVS.P 4(R1), F0
	FMOVS.P 4(R2), F1
	FMOVS.P 4(R4), F2
	FMULS   F1, F0, F0 // F0 = F0 * F1, rounded and flushed
	FADDS   F2, F0, F0 // F0 = F0 + F2
	FMOVS.P F0, 4(R0)
	SUB     $1, R3
	B       loop
done:
	EPILOGUE

// func probeMulNEON(fpcr uint64, dst, a, b, c []float32)
TEXT ·probeMulNEON(SB), NOSPLIT, $0-104
	PROLOGUE
loop:
	CBZ    R3, done
	VLD1.P 16(R1), [V0.S4]
	VLD1.P 16(R2), [V1.S4]
	WORD   $0x6e21dc00 // FMUL V0.4S, V0.4S, V1.4S
	VST1.P [V0.S4], 16(R0)
	SUB    $4, R3
	B      loop
done:
	EPILOGUE

// func probeAddNEON(fpcr uint64, dst, a, b, c []float32)
TEXT ·probeAddNEON(SB), NOSPLIT, $0-104
	PROLOGUE
loop:
	CBZ    R3, done
	VLD1.P 16(R1), [V0.S4]
	VLD1.P 16(R2), [V1.S4]
	WORD   $0x4e21d400 // FADD V0.4S, V0.4S, V1.4S
	VST1.P [V0.S4], 16(R0)
	SUB    $4, R3
	B      loop
done:
	EPILOGUE

// func probeDivNEON(fpcr uint64, dst, a, b, c []float32)
TEXT ·probeDivNEON(SB), NOSPLIT, $0-104
	PROLOGUE
loop:
	CBZ    R3, done
	VLD1.P 16(R1), [V0.S4]
	VLD1.P 16(R2), [V1.S4]
	WORD   $0x6e21fc00 // FDIV V0.4S, V0.4S, V1.4S
	VST1.P [V0.S4], 16(R0)
	SUB    $4, R3
	B      loop
done:
	EPILOGUE

// func probeFMANEON(fpcr uint64, dst, a, b, c []float32)
TEXT ·probeFMANEON(SB), NOSPLIT, $0-104
	PROLOGUE
loop:
	CBZ    R3, done
	VLD1.P 16(R1), [V0.S4]
	VLD1.P 16(R2), [V1.S4]
	VLD1.P 16(R4), [V2.S4]
	VFMLA  V1.S4, V0.S4, V2.S4 // FMLA V2.4S, V0.4S, V1.4S: V2 += V0*V1, one rounding
	VST1.P [V2.S4], 16(R0)
	SUB    $4, R3
	B      loop
done:
	EPILOGUE

// func probeMulAddNEON(fpcr uint64, dst, a, b, c []float32)
TEXT ·probeMulAddNEON(SB), NOSPLIT, $0-104
	PROLOGUE
loop:
	CBZ    R3, done
	VLD1.P 16(R1), [V0.S4]
	VLD1.P 16(R2), [V1.S4]
	VLD1.P 16(R4), [V2.S4]
	WORD   $0x6e21dc00 // FMUL V0.4S, V0.4S, V1.4S
	WORD   $0x4e22d400 // FADD V0.4S, V0.4S, V2.4S
	VST1.P [V0.S4], 16(R0)
	SUB    $4, R3
	B      loop
done:
	EPILOGUE
