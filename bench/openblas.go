//go:build openblas

package bench

// OpenBLAS single-threaded sgemm, for the side-by-side benchmark
// (go test -tags openblas). Needs Debian's libopenblas-dev.

/*
#cgo LDFLAGS: -lopenblas
#include <cblas-openblas.h>
*/
import "C"

func init() { C.openblas_set_num_threads(1) }

// OpenBLASCore names the kernel family OpenBLAS picked for this CPU.
func OpenBLASCore() string { return C.GoString(C.openblas_get_corename()) }

// OpenBLASSgemm sets dst = a·b (row-major, a m×k, b k×n) with OpenBLAS on
// one thread. m, k and n must be at least 1.
func OpenBLASSgemm(dst, a, b []float32, m, k, n int) {
	if len(a) < m*k || len(b) < k*n || len(dst) < m*n {
		panic("bench.OpenBLASSgemm: slices too short")
	}
	C.cblas_sgemm(C.CblasRowMajor, C.CblasNoTrans, C.CblasNoTrans, C.blasint(m), C.blasint(n), C.blasint(k),
		1, (*C.float)(&a[0]), C.blasint(k), (*C.float)(&b[0]), C.blasint(n), 0, (*C.float)(&dst[0]), C.blasint(n))
}
