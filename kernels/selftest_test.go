package kernels

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
)

// TestSelfTestAnswers recomputes the stored answers with the scalar
// reference, and checks that the cases tell the environments apart: a
// backend that ran one environment's mode for another would fail.
func TestSelfTestAnswers(t *testing.T) {
	in := selfTestOperands()
	got := make([][5]uint64, len(selfTestCases))
	for i, c := range selfTestCases {
		for _, env := range Envs {
			got[i][env] = selfTestHash(c.ref(env, in))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(selfTestAnswers) {
		var b strings.Builder
		b.WriteString("var selfTestAnswers = [][5]uint64{\n")
		for i, h := range got {
			fmt.Fprintf(&b, "\t{%#016x, %#016x, %#016x, %#016x, %#016x}, // %s\n", h[0], h[1], h[2], h[3], h[4], selfTestCases[i].name)
		}
		b.WriteString("}\n")
		t.Fatalf("stored self-test answers differ from the reference; the reference gives:\n%s", b.String())
	}
	for _, pair := range [][2]Env{{IEEE, FTZ}, {IEEE, DAZ}, {FTZ, DAZ}, {FTZ, FTZDAZ}, {DAZ, FTZDAZ}, {FTZDAZ, ArmFZ}} {
		products, elementwise := false, false
		for i, c := range selfTestCases {
			if got[i][pair[0]] != got[i][pair[1]] {
				products = products || !c.elementwise
				elementwise = elementwise || c.elementwise
			}
		}
		if !products || !elementwise && pair[1] != ArmFZ {
			t.Errorf("%v and %v: same answers for every product case (%v) or every elementwise case (%v): the self-test cannot tell them apart",
				pair[0], pair[1], !products, !elementwise)
		}
	}
}

// TestSelfTestPasses: every backend this machine runs (and the test-only
// ones) passes, run afresh rather than from the cached outcome.
func TestSelfTestPasses(t *testing.T) {
	for _, be := range testBackends() {
		if be.kern == nil {
			continue
		}
		if err := be.runSelfTest(); err != nil {
			t.Errorf("%s: %v", be.name, err)
		}
		markServed(be, IEEE)
	}
	if err := SelfTest(); err != nil {
		t.Error(err)
	}
}

// brokenBackend is be with a deliberate fault: each product kernel call
// (products) or each elementwise call (!products) flips the lowest bit of
// the first element it writes. Its name is be's, as a real fault's would be.
func brokenBackend(be *backend, products bool) *backend {
	broken := &backend{name: be.name, envMode: be.envMode, biasAdd: be.biasAdd, biasAddScale: be.biasAddScale, addScaled: be.addScaled}
	flip := func(p *float32) { *p = math.Float32frombits(math.Float32bits(*p) ^ 1) }
	if !products {
		broken.kern = be.kern
		if be.biasAdd == nil {
			return nil
		}
		broken.biasAdd = func(dst, src, bias *float32, rows, cols int, mode uint32) {
			be.biasAdd(dst, src, bias, rows, cols, mode)
			flip(dst)
		}
		return broken
	}
	k := be.kern
	wrap := func(run func(a, b, c *float32, kc, lda, ldc, mtiles int, mode uint32)) func(a, b, c *float32, kc, lda, ldc, mtiles int, mode uint32) {
		if run == nil {
			return nil
		}
		return func(a, b, c *float32, kc, lda, ldc, mtiles int, mode uint32) {
			run(a, b, c, kc, lda, ldc, mtiles, mode)
			flip(c)
		}
	}
	broken.kern = &microKernel{mr: k.mr, nr: k.nr, kc: k.kc, mc: k.mc, nc: k.nc, run: wrap(k.run), runCols: wrap(k.runCols),
		copyRows: k.copyRows, transposeRows: k.transposeRows}
	return broken
}

// topSIMD returns the fastest SIMD backend here, or skips the test.
func topSIMD(t *testing.T) *backend {
	be := availableBackends()[0]
	if be == pureGo {
		t.Skip("no SIMD backend in this build or on this CPU: nothing can fail a self-test")
	}
	return be
}

// TestSelfTestFallback: a wrong backend is refused with one line naming
// the backend, the environment and the case, and the next one serves; when
// UNDERFLOW_BACKEND forced it, the error says so instead.
func TestSelfTestFallback(t *testing.T) {
	top := topSIMD(t)
	avail := availableBackends()
	for _, products := range []bool{true, false} {
		broken := brokenBackend(top, products)
		if broken == nil {
			continue // no elementwise kernels on this backend
		}
		var log bytes.Buffer
		be, err := trustedBackend(broken, false, avail, &log)
		if err != nil || be != avail[1] {
			t.Fatalf("products=%v: got backend %v, error %v; want %s", products, be, err, avail[1].name)
		}
		line := log.String()
		if strings.Count(line, "\n") != 1 || !strings.Contains(line, "backend "+top.name) || !strings.Contains(line, "falling back to "+avail[1].name) ||
			!strings.Contains(line, "IEEE") || !strings.Contains(line, "×") || !strings.Contains(line, "element (0, 0)") {
			t.Errorf("products=%v: fallback report %q: want one line naming backend, environment, case and element", products, line)
		}
		t.Logf("fallback report: %s", strings.TrimSpace(line))

		_, err = trustedBackend(brokenBackend(top, products), true, avail, &log)
		if err == nil || !strings.Contains(err.Error(), "UNDERFLOW_BACKEND="+top.name) || !strings.Contains(err.Error(), "differs from the reference") {
			t.Errorf("products=%v: forced broken backend: error %v", products, err)
		}
	}
}

// swapStartup makes be the start-up choice, not yet resolved, for fn: as if
// the process had just started with be selected (forced or not).
func swapStartup(be *backend, force bool, log *bytes.Buffer, fn func()) {
	serving()
	savedActive, savedForced, savedLog := active, forced, selfTestLog
	active, forced, selfTestLog, resolved = be, force, log, sync.Once{}
	defer func() {
		active, forced, selfTestLog = savedActive, savedForced, savedLog
		resolved = sync.Once{}
		resolved.Do(func() {})
	}()
	fn()
}

// TestFirstProductResolves: the first products, from many goroutines at
// once, run the self-test once, and all of them are served by the backend
// that passed (run with -race by make test).
func TestFirstProductResolves(t *testing.T) {
	top := topSIMD(t)
	m, k, n := 13, 40, 37
	a, b := make([]float32, m*k), make([]float32, k*n)
	for i := range a {
		a[i] = float32(i%7) - 3
	}
	for i := range b {
		b[i] = float32(i%5) - 2
	}
	want := make([]float32, m*n)
	mmOracle(IEEE, mmForms[0], want, a, b, m, k, n)
	var log bytes.Buffer
	swapStartup(brokenBackend(top, true), false, &log, func() {
		var wg sync.WaitGroup
		results := make([][]float32, 8)
		for g := range results {
			wg.Go(func() {
				results[g] = make([]float32, m*n)
				MatMul(IEEE, results[g], a, b, m, k, n)
			})
		}
		wg.Wait()
		for g, got := range results {
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("goroutine %d: element %d = %v, want %v: the broken backend served", g, i, got[i], want[i])
				}
			}
		}
		if next := availableBackends()[1].name; Backend() != next {
			t.Errorf("Backend() = %s after %s failed, want %s", Backend(), top.name, next)
		}
	})
	if strings.Count(log.String(), "\n") != 1 {
		t.Errorf("want exactly one fallback line, got %q", log.String())
	}
}

// TestForcedBrokenBackendStops: with UNDERFLOW_BACKEND naming a backend
// that fails, the first product stops the program (one line, exit status
// 2, as for a bad UNDERFLOW_BACKEND) with the reason.
func TestForcedBrokenBackendStops(t *testing.T) {
	top := topSIMD(t)
	type stopped struct{ err error }
	saved := stopProgram
	stopProgram = func(err error) { panic(stopped{err}) } // os.Exit would end the tests
	defer func() { stopProgram = saved }()
	var log bytes.Buffer
	swapStartup(brokenBackend(top, true), true, &log, func() {
		defer func() {
			s, ok := recover().(stopped)
			if !ok || !strings.Contains(s.err.Error(), "UNDERFLOW_BACKEND="+top.name) || !strings.Contains(s.err.Error(), "self-test") ||
				strings.Contains(s.err.Error(), "\n") {
				t.Errorf("stopped with %v: want one line naming the forced backend and its self-test", s.err)
			}
		}()
		MatMul(IEEE, make([]float32, 4), make([]float32, 4), make([]float32, 4), 2, 2, 2)
		t.Errorf("a product ran on a forced backend that fails its self-test")
	})
	if log.Len() != 0 {
		t.Errorf("forced: no fallback line expected, got %q", log.String())
	}
}

// BenchmarkSelfTest is what the self-test adds to a process's first
// product, per backend: go test -run '^$' -bench SelfTest ./kernels
func BenchmarkSelfTest(b *testing.B) {
	for _, be := range availableBackends() {
		if be.kern == nil {
			continue
		}
		b.Run(be.name, func(b *testing.B) {
			for b.Loop() {
				if err := be.runSelfTest(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
