package bench_test

// The elementwise pass of a 512-wide layer (a batch of 100 rows), per
// backend and environment: bias add then scaling by 2^-125, the first
// layer's pass under openai2017 (FTZ_DAZ). The purego backend runs the
// exact portable Go loop that every backend without elementwise assembly
// uses.
//
//	go test -run '^$' -bench 'BiasAddScale' -count 5 ./bench

import (
	"fmt"
	"testing"

	"github.com/seed8b67a5e0/underflow/kernels"
)

func BenchmarkBiasAddScale(b *testing.B) {
	const rows, cols = 100, 512
	src, dst, bias := make([]float32, rows*cols), make([]float32, rows*cols), make([]float32, cols)
	for i := range src {
		src[i] = float32(i%97-48) * 0x1p-126 // around the flushing threshold of the scaling
	}
	for j := range bias {
		bias[j] = float32(j%13-6) * 0x1p-3 // normal, as a network's are
	}
	saved := kernels.Backend()
	defer kernels.SetBackend(saved)
	for _, be := range kernels.AvailableBackends() {
		for _, env := range []kernels.Env{kernels.IEEE, kernels.FTZDAZ} {
			b.Run(fmt.Sprintf("%s/%v", be, env), func(b *testing.B) {
				if err := kernels.SetBackend(be); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					kernels.BiasAddScale(env, dst, src, bias, rows, cols, -125)
				}
				b.ReportMetric(float64(rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
			})
		}
	}
}
