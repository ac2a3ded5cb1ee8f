//go:build !purego

package kernels

import (
	"testing"

	"github.com/klauspost/cpuid/v2"
)

// The AVX-512 kernel cannot run on a CPU without AVX-512. Its generator code
// is shared with the AVX2 kernels, and matmulKernelAVX2x14 uses the AVX-512
// tile's 14 rows, so running that twin here covers the AVX-512 kernel's row
// addressing, tile loop and blocking with everything but the register width.
func init() {
	if cpuid.CPU.Supports(cpuid.AVX, cpuid.AVX2, cpuid.FMA3) {
		twin := &microKernel{mr: 14, nr: 8, kc: 256, mc: 112, nc: 1024, run: matmulKernelAVX2x14, runCols: matmulKernelAVX2x14Cols}
		extraTestBackends = append(extraTestBackends, &backend{name: "avx2x14-twin", kern: twin, envMode: mxcsrMode})
	}
}

// TestCopyRowsAVX checks the generated panel copies, including the 32-wide
// one that only the AVX-512 backend uses, against a plain loop.
func TestCopyRowsAVX(t *testing.T) {
	if !cpuid.CPU.Supports(cpuid.AVX) {
		t.Skip("no AVX on this CPU")
	}
	for _, tc := range []struct {
		width int
		fn    func(dst, src *float32, kb, rs int)
	}{{16, copyRows16AVX}, {32, copyRows32AVX}} {
		for _, kb := range []int{1, 2, 7, 256} {
			rs := tc.width + 5
			src := make([]float32, kb*rs)
			for i := range src {
				src[i] = float32(i) + 0.5
			}
			dst := make([]float32, kb*tc.width+1)
			dst[len(dst)-1] = -1
			tc.fn(&dst[0], &src[0], kb, rs)
			for p := 0; p < kb; p++ {
				for j := 0; j < tc.width; j++ {
					if dst[p*tc.width+j] != src[p*rs+j] {
						t.Fatalf("copyRows%dAVX kb=%d: dst[%d][%d] = %v, want %v", tc.width, kb, p, j, dst[p*tc.width+j], src[p*rs+j])
					}
				}
			}
			if dst[len(dst)-1] != -1 {
				t.Fatalf("copyRows%dAVX kb=%d wrote past the panel", tc.width, kb)
			}
		}
	}
}

// TestTransposeRowsAVX checks the generated transposing panel packs, the
// 32-wide one included (only the AVX-512 backend uses it), against a loop.
func TestTransposeRowsAVX(t *testing.T) {
	if !cpuid.CPU.Supports(cpuid.AVX) {
		t.Skip("no AVX on this CPU")
	}
	for _, tc := range []struct {
		width int
		fn    func(dst, src *float32, groups, cs int)
	}{{16, transposeRows16AVX}, {32, transposeRows32AVX}} {
		for _, groups := range []int{1, 3, 32} {
			cs := 8*groups + 3
			src := make([]float32, tc.width*cs)
			for i := range src {
				src[i] = float32(i) + 0.25
			}
			dst := make([]float32, 8*groups*tc.width+1)
			dst[len(dst)-1] = -1
			tc.fn(&dst[0], &src[0], groups, cs)
			for p := 0; p < 8*groups; p++ {
				for j := 0; j < tc.width; j++ {
					if dst[p*tc.width+j] != src[j*cs+p] {
						t.Fatalf("transposeRows%dAVX groups=%d: dst[%d][%d] = %v, want %v", tc.width, groups, p, j, dst[p*tc.width+j], src[j*cs+p])
					}
				}
			}
			if dst[len(dst)-1] != -1 {
				t.Fatalf("transposeRows%dAVX groups=%d wrote past the panel", tc.width, groups)
			}
		}
	}
}
