//go:build !purego

package kernels

// matmulKernelNEON (hand-written, matmul_neon_arm64.s) runs mtiles tiles of
// 8×8. Tile t reads rows t*8.. of A (row-major, row stride lda floats) and
// the packed B panel (kc rows of 8 floats) and continues, for p < kc in
// increasing p, the chain C[i][j] = fma(A[i][p], B[p][j], C[i][j]) of the
// rows of C (row stride ldc). It runs with FPCR = mode and restores the
// caller's FPCR before returning. Requires kc >= 1 and mtiles >= 1.
//
//go:noescape
func matmulKernelNEON(a, b, c *float32, kc, lda, ldc, mtiles int, mode uint32)
