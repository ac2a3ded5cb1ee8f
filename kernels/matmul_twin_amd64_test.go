//go:build !purego

package kernels

import (
	"math/rand/v2"
	"testing"

	"github.com/klauspost/cpuid/v2"
)

// The AVX-512 kernel cannot run on a CPU without AVX-512. Its generator code
// is shared with the AVX2 kernels, and the AVX512Twin family (ymm) has the
// AVX-512 tile's rows, so running that twin here covers the AVX-512 kernels' row
// addressing, tile loop and blocking with everything but the register width.
// The AVX-512 family's packers (plain moves, AVX only) are tested directly.
func init() {
	if cpuid.CPU.Supports(cpuid.AVX, cpuid.AVX2, cpuid.FMA3) {
		twin := newAMD64Kernel(matmulTileAVX512Twin, 192, 120, matmulKernelAVX512Twin, matmulKernelAVX512TwinCols,
			copyRowsAVX512Twin, perturbBlockAVX512Twin, perturbPairBlockAVX512Twin, transposeRowsAVX512Twin)
		extraTestBackends = append(extraTestBackends, &backend{name: "avx512-twin", kern: twin, envMode: mxcsrMode})
		// The AVX2 tiles alone, without the small-shape kernels, so that
		// the packed path stays tested on the shapes those take over.
		tiles := newAMD64Kernel(matmulTileAVX2, 256, 120, matmulKernelAVX2, matmulKernelAVX2Cols,
			copyRowsAVX2, perturbBlockAVX2, perturbPairBlockAVX2, transposeRowsAVX2)
		tiles.shortK, tiles.narrow = nil, nil
		extraTestBackends = append(extraTestBackends, &backend{name: "avx2-tiles", kern: tiles, envMode: mxcsrMode})
	}
	coverageKernels["avx2"], coverageKernels["avx512"] = avx2Kernel, avx512Kernel
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
	}{{tileNR(matmulTileAVX2), copyRowsAVX2}, {tileNR(matmulTileAVX512), copyRowsAVX512}, {tileNR(matmulTileAVX512Twin), copyRowsAVX512Twin}} {
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
						t.Fatalf("copyRows (width %d) kb=%d: dst[%d][%d] = %v, want %v", tc.width, kb, p, j, dst[p*tc.width+j], src[p*rs+j])
					}
				}
			}
			if dst[len(dst)-1] != -1 {
				t.Fatalf("copyRows (width %d) kb=%d wrote past the panel", tc.width, kb)
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
	}{{tileNR(matmulTileAVX2), transposeRowsAVX2}, {tileNR(matmulTileAVX512), transposeRowsAVX512}, {tileNR(matmulTileAVX512Twin), transposeRowsAVX512Twin}} {
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
						t.Fatalf("transposeRows (width %d) groups=%d: dst[%d][%d] = %v, want %v", tc.width, groups, p, j, dst[p*tc.width+j], src[j*cs+p])
					}
				}
			}
			if dst[len(dst)-1] != -1 {
				t.Fatalf("transposeRows (width %d) groups=%d wrote past the panel", tc.width, groups)
			}
		}
	}
}

func tileNR(tile func() (mr, nr int)) int {
	_, nr := tile()
	return nr
}

// TestGeneratedTiles pins the tiles the generator reports, so a change of
// tile is a deliberate one.
func TestGeneratedTiles(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tile   func() (int, int)
		mr, nr int
	}{{"AVX2", matmulTileAVX2, 6, 16}, {"AVX512", matmulTileAVX512, 10, 32}, {"AVX512Twin", matmulTileAVX512Twin, 10, 8}} {
		if mr, nr := tc.tile(); mr != tc.mr || nr != tc.nr {
			t.Errorf("%s tile %d×%d, want %d×%d", tc.name, mr, nr, tc.mr, tc.nr)
		}
	}
	if avx512Kernel.mc%avx512Kernel.mr != 0 || avx2Kernel.mc%avx2Kernel.mr != 0 {
		t.Errorf("mc not a multiple of mr: avx2 %d/%d, avx512 %d/%d", avx2Kernel.mc, avx2Kernel.mr, avx512Kernel.mc, avx512Kernel.mr)
	}
}

// TestPerturbBlockAVX512 checks the 32-wide perturbed block pack that only
// the AVX-512 backend uses (AVX instructions: it runs here) against the
// scalar reference; the other widths run in TestPerturbBlockMatchesReference.
func TestPerturbBlockAVX512(t *testing.T) {
	if !cpuid.CPU.Supports(cpuid.AVX) {
		t.Skip("no AVX on this CPU")
	}
	kern := newAMD64Kernel(matmulTileAVX512, 192, 120, nil, nil, copyRowsAVX512, perturbBlockAVX512, perturbPairBlockAVX512, transposeRowsAVX512)
	checkPerturbedBlock(t, "avx512", kern, rand.New(rand.NewPCG(25, 26)))
}
