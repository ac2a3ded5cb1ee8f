package kernels

// Dispatch: which backend serves the products. The SIMD backends this CPU
// can run come from the per-architecture files dispatch_amd64.go and
// dispatch_arm64.go; a -tags purego build has none. UNDERFLOW_BACKEND forces
// one, and a name this machine cannot serve stops the program at start-up
// rather than silently running something else: one line on stderr and exit
// status 2, as for any other bad setting (SetBackend, the API, returns an
// error instead). Before a SIMD backend serves its first call, it passes a
// known-answer self-test (selftest.go).

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// backend is one way to run the products.
type backend struct {
	name string
	kern *microKernel // nil: the pure-Go reference product
	// envMode gives the control register value for env, or ok = false when
	// the backend cannot do env natively (the call then goes to the
	// reference).
	envMode func(env Env) (mode uint32, ok bool)
	// The elementwise kernels (elementwise.go), running under the same
	// control register value; nil: the portable loops serve.
	biasAdd      func(dst, src, bias *float32, rows, cols int, mode uint32)
	biasAddScale func(dst, src, bias *float32, rows, cols int, scale float32, mode uint32)
	addScaled    func(dst, x, y *float32, n int, s float32, mode uint32)
	weightedSum  func(acc *float32, n int, eps **float32, w *float32, pairs int, mode uint32)
	// Adam's update in IEEE (the Go ABI's MXCSR), without and with
	// decoupled weight decay; nil: the portable loop serves.
	adam      func(p, g, m, v *float32, n int, b1, b2, c1, c2, eps, step float32)
	adamDecay func(p, g, m, v *float32, n int, b1, b2, c1, c2, eps, decay, step float32)

	// The self-test's outcome, computed once (selftest.go).
	checked  sync.Once
	checkErr error
}

var pureGo = &backend{name: "purego"}

// active is the backend chosen at start-up; until resolve has run it has
// not yet passed its self-test, so calls reach it through serving. Tests
// switch it (after resolve); SetBackend and resolve write it.
var (
	active = startupBackend()
	// forced: UNDERFLOW_BACKEND chose active, so a failed self-test stops
	// the program instead of falling back.
	forced = os.Getenv("UNDERFLOW_BACKEND") != ""
	// resolved runs resolve before the first call that needs a backend, so
	// a program that never multiplies pays nothing.
	resolved sync.Once
	// selfTestLog receives the line that reports a fallback.
	selfTestLog io.Writer = os.Stderr
	// stopProgram ends the process over a bad setting: one line on stderr
	// and exit status 2. Tests replace it.
	stopProgram = func(err error) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", filepath.Base(os.Args[0]), err)
		os.Exit(2)
	}
)

// startupBackend is selectBackend for UNDERFLOW_BACKEND. A bad name is a bad
// setting of the whole process, found before main runs: a panic would print
// a goroutine trace where one line says everything.
func startupBackend() *backend {
	be, err := selectBackend(os.Getenv("UNDERFLOW_BACKEND"))
	if err != nil {
		stopProgram(err)
	}
	return be
}

// serving returns the backend that serves calls now, running the start-up
// backend's self-test first if no call has done so yet.
func serving() *backend {
	resolved.Do(resolve)
	return active
}

// resolve replaces the start-up backend by the first one after it that
// passes its self-test, or stops the program if UNDERFLOW_BACKEND forced
// the one that failed.
func resolve() {
	be, err := trustedBackend(active, forced, availableBackends(), selfTestLog)
	if err != nil {
		stopProgram(err)
	}
	active = be
}

// trustedBackend returns first if it passes its self-test, else (unless
// forced) the next backend of avail, fastest first, that does, writing one
// line to log for each that failed. purego, the reference, always passes.
func trustedBackend(first *backend, forced bool, avail []*backend, log io.Writer) (*backend, error) {
	be := first
	for {
		err := be.selfTest()
		if err == nil {
			return be, nil
		}
		if forced {
			return nil, fmt.Errorf("UNDERFLOW_BACKEND=%s: %v; unset UNDERFLOW_BACKEND to fall back to a slower backend", be.name, err)
		}
		next := pureGo
		for i, a := range avail {
			if a.name == be.name && i+1 < len(avail) {
				next = avail[i+1]
				break
			}
		}
		fmt.Fprintf(log, "%v; falling back to %s\n", err, next.name)
		be = next
	}
}

func (be *backend) mode(env Env) (uint32, bool) {
	if be.kern == nil {
		return 0, true
	}
	return be.envMode(env)
}

// elementwiseMode is mode for the elementwise kernels: ok = false when the
// backend has none, or cannot do env natively.
func (be *backend) elementwiseMode(env Env) (uint32, bool) {
	if be.biasAdd == nil {
		return 0, false
	}
	return be.envMode(env)
}

func (be *backend) tile() (mr, nr int) {
	if be.kern == nil {
		return 1, 1
	}
	return be.kern.mr, be.kern.nr
}

func (be *backend) product(env Env, mode uint32, c []float32, ldc int, a, b matrix, m, k, n int) {
	if be.kern == nil {
		refProduct(env, c, ldc, a, b, m, k, n)
		return
	}
	be.kern.product(mode, c, ldc, a, b, m, k, n)
}

// backendNames are all the backends there are, on any machine.
var backendNames = []string{"purego", "avx2", "avx512", "neon"}

func availableBackends() []*backend { return append(simdBackends(), pureGo) }

// selectBackend is the start-up choice: the fastest available backend, or
// the one UNDERFLOW_BACKEND names; a name this machine cannot serve is an
// error that names the variable.
func selectBackend(name string) (*backend, error) {
	if name == "" {
		return availableBackends()[0], nil
	}
	be, err := findBackend(name)
	if err != nil {
		return nil, fmt.Errorf("UNDERFLOW_BACKEND=%q: %v", name, err)
	}
	return be, nil
}

// findBackend returns the named backend, or an error that says whether the
// name is not a backend at all or one this machine cannot run.
func findBackend(name string) (*backend, error) {
	avail := availableBackends()
	var names []string
	for _, be := range avail {
		if be.name == name {
			return be, nil
		}
		names = append(names, be.name)
	}
	for _, n := range backendNames {
		if n == name {
			return nil, fmt.Errorf("backend %q cannot run on this machine (%s/%s); available here: %s",
				name, runtime.GOOS, runtime.GOARCH, strings.Join(names, ", "))
		}
	}
	return nil, fmt.Errorf("%q is not a backend (want one of %s)", name, strings.Join(backendNames, ", "))
}

// Backend names the backend that serves calls now: "purego", "avx2",
// "avx512" or "neon". It runs the self-test if no call has yet, so the name
// is that of the backend that really serves.
func Backend() string { return serving().name }

// Native reports whether the current backend runs env itself. When it is
// false, products in env go to the pure-Go reference (for example FTZ on
// arm64, or ARM_FZ on amd64). The purego backend is the reference and runs
// every environment itself.
func Native(env Env) bool {
	if !env.Valid() {
		return false
	}
	_, ok := serving().mode(env)
	return ok
}

// AvailableBackends lists the backends this machine can run, fastest first;
// "purego" is always last.
func AvailableBackends() []string {
	var names []string
	for _, be := range availableBackends() {
		names = append(names, be.name)
	}
	return names
}

// SetBackend makes the named backend serve the products from now on, as
// UNDERFLOW_BACKEND does at start-up; benchmarks and tools use it to compare
// backends in one run. A backend that fails its self-test is refused. It
// must not race with calls in flight.
func SetBackend(name string) error {
	be, err := findBackend(name)
	if err != nil {
		return fmt.Errorf("kernels: %v", err)
	}
	if err := be.selfTest(); err != nil {
		return err
	}
	resolved.Do(func() {}) // the start-up choice is replaced: no need to test it
	active = be
	return nil
}
