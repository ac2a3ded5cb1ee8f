//go:build !purego

// Hand-written NEON micro-kernel for arm64 (Avo has no arm64 support). Same
// contract as the generated amd64 kernels (see matmul_neon_arm64.go): tiles
// of 8 rows × 8 columns, 16 accumulators V0-V15, each row's A[i][p]
// replicated by VLD1R into V16-V23, the packed B row in V24-V25, and one
// VFMLA (fused, one rounding) per 4 elements and step, in increasing p.

#include "textflag.h"

// func matmulKernelNEON(a, b, c *float32, kc, lda, ldc, mtiles int, mode uint32)
TEXT ·matmulKernelNEON(SB), NOSPLIT, $0-60
	MOVD  a+0(FP), R0
	MOVD  b+8(FP), R1
	MOVD  c+16(FP), R2
	MOVD  kc+24(FP), R3
	MOVD  lda+32(FP), R4
	LSL   $2, R4, R4 // lda in bytes
	MOVD  ldc+40(FP), R5
	LSL   $2, R5, R5 // ldc in bytes
	MOVD  mtiles+48(FP), R6
	MOVWU mode+56(FP), R7

	// Enter the environment's FPCR; the caller's is restored on exit.
	MRS FPCR, R8
	MSR R7, FPCR

tile:
	// R10-R17 point at the tile's 8 rows of A.
	MOVD R0, R10
	ADD  R4, R10, R11
	ADD  R4, R11, R12
	ADD  R4, R12, R13
	ADD  R4, R13, R14
	ADD  R4, R14, R15
	ADD  R4, R15, R16
	ADD  R4, R16, R17

	// Load the running sums of the tile's rows of C.
	MOVD R2, R19
	VLD1 (R19), [V0.S4, V1.S4]
	ADD  R5, R19, R19
	VLD1 (R19), [V2.S4, V3.S4]
	ADD  R5, R19, R19
	VLD1 (R19), [V4.S4, V5.S4]
	ADD  R5, R19, R19
	VLD1 (R19), [V6.S4, V7.S4]
	ADD  R5, R19, R19
	VLD1 (R19), [V8.S4, V9.S4]
	ADD  R5, R19, R19
	VLD1 (R19), [V10.S4, V11.S4]
	ADD  R5, R19, R19
	VLD1 (R19), [V12.S4, V13.S4]
	ADD  R5, R19, R19
	VLD1 (R19), [V14.S4, V15.S4]
	MOVD R1, R20 // packed B
	MOVD R3, R21 // steps left

step:
	VLD1.P 32(R20), [V24.S4, V25.S4]
	VLD1R.P 4(R10), [V16.S4]
	VLD1R.P 4(R11), [V17.S4]
	VLD1R.P 4(R12), [V18.S4]
	VLD1R.P 4(R13), [V19.S4]
	VLD1R.P 4(R14), [V20.S4]
	VLD1R.P 4(R15), [V21.S4]
	VLD1R.P 4(R16), [V22.S4]
	VLD1R.P 4(R17), [V23.S4]
	VFMLA V24.S4, V16.S4, V0.S4
	VFMLA V25.S4, V16.S4, V1.S4
	VFMLA V24.S4, V17.S4, V2.S4
	VFMLA V25.S4, V17.S4, V3.S4
	VFMLA V24.S4, V18.S4, V4.S4
	VFMLA V25.S4, V18.S4, V5.S4
	VFMLA V24.S4, V19.S4, V6.S4
	VFMLA V25.S4, V19.S4, V7.S4
	VFMLA V24.S4, V20.S4, V8.S4
	VFMLA V25.S4, V20.S4, V9.S4
	VFMLA V24.S4, V21.S4, V10.S4
	VFMLA V25.S4, V21.S4, V11.S4
	VFMLA V24.S4, V22.S4, V12.S4
	VFMLA V25.S4, V22.S4, V13.S4
	VFMLA V24.S4, V23.S4, V14.S4
	VFMLA V25.S4, V23.S4, V15.S4
	SUBS $1, R21, R21
	BNE  step

	// Store the sums.
	MOVD R2, R19
	VST1 [V0.S4, V1.S4], (R19)
	ADD  R5, R19, R19
	VST1 [V2.S4, V3.S4], (R19)
	ADD  R5, R19, R19
	VST1 [V4.S4, V5.S4], (R19)
	ADD  R5, R19, R19
	VST1 [V6.S4, V7.S4], (R19)
	ADD  R5, R19, R19
	VST1 [V8.S4, V9.S4], (R19)
	ADD  R5, R19, R19
	VST1 [V10.S4, V11.S4], (R19)
	ADD  R5, R19, R19
	VST1 [V12.S4, V13.S4], (R19)
	ADD  R5, R19, R19
	VST1 [V14.S4, V15.S4], (R19)

	// The next tile starts 8 rows down in A and C.
	ADD  R4<<3, R0, R0
	ADD  R5<<3, R2, R2
	SUBS $1, R6, R6
	BNE  tile

	MSR R8, FPCR
	RET
