package kernels

// Dispatch: which backend serves the products. The SIMD backends this CPU
// can run come from the per-architecture files dispatch_amd64.go and
// dispatch_arm64.go; a -tags purego build has none. UNDERFLOW_BACKEND forces
// one, and a name this machine cannot serve stops the program at start-up
// rather than silently running something else: one line on stderr and exit
// status 2, as for any other bad setting (SetBackend, the API, returns an
// error instead).

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
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
}

var pureGo = &backend{name: "purego"}

// active serves the calls. Tests switch it; nothing else writes it.
var active = startupBackend()

// startupBackend is selectBackend for UNDERFLOW_BACKEND. A bad name is a bad
// setting of the whole process, found before main runs: a panic would print
// a goroutine trace where one line says everything.
func startupBackend() *backend {
	be, err := selectBackend(os.Getenv("UNDERFLOW_BACKEND"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", filepath.Base(os.Args[0]), err)
		os.Exit(2)
	}
	return be
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
// "avx512" or "neon".
func Backend() string { return active.name }

// Native reports whether the current backend runs env itself. When it is
// false, products in env go to the pure-Go reference (for example FTZ on
// arm64, or ARM_FZ on amd64). The purego backend is the reference and runs
// every environment itself.
func Native(env Env) bool {
	if !env.Valid() {
		return false
	}
	_, ok := active.mode(env)
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
// backends in one run. It must not race with products in flight.
func SetBackend(name string) error {
	be, err := findBackend(name)
	if err != nil {
		return fmt.Errorf("kernels: %v", err)
	}
	active = be
	return nil
}
