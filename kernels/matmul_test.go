package kernels

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// extraTestBackends are kernels that dispatch never picks but the tests run
// next to the real backends (see matmul_twin_amd64_test.go).
var extraTestBackends []*backend

// testBackends are the backends every comparison runs: every backend this
// machine has and the test-only ones, or only those that
// UNDERFLOW_TEST_BACKENDS names (comma-separated). The emulated AVX-512
// stage of make test uses it to spend its slow minutes on avx512 and its
// twin, not on backends the other stages test natively.
func testBackends() []*backend {
	all := append(availableBackends(), extraTestBackends...)
	only := os.Getenv("UNDERFLOW_TEST_BACKENDS")
	if only == "" {
		return all
	}
	var bs []*backend
	for _, be := range all {
		if slices.Contains(strings.Split(only, ","), be.name) {
			bs = append(bs, be)
		}
	}
	return bs
}

// testBackendsIn is testBackends for comparisons in env: when
// UNDERFLOW_TEST_BACKENDS restricts them, only those that run env
// natively (the others' calls go to the reference, which the unrestricted
// runs test).
func testBackendsIn(env Env) []*backend {
	bs := testBackends()
	if os.Getenv("UNDERFLOW_TEST_BACKENDS") == "" {
		return bs
	}
	var native []*backend
	for _, be := range bs {
		if _, ok := be.mode(env); ok {
			native = append(native, be)
		}
	}
	return native
}

// checkTestBackends fails when UNDERFLOW_TEST_BACKENDS names a backend the
// tests do not have here: a typo must not leave the tests comparing nothing.
func checkTestBackends() error {
	only := os.Getenv("UNDERFLOW_TEST_BACKENDS")
	if only == "" {
		return nil
	}
	var have []string
	for _, be := range append(availableBackends(), extraTestBackends...) {
		have = append(have, be.name)
	}
	for _, name := range strings.Split(only, ",") {
		if !slices.Contains(have, name) {
			return fmt.Errorf("UNDERFLOW_TEST_BACKENDS=%s names %q, which these tests do not have here (they have: %s)", only, name, strings.Join(have, ", "))
		}
	}
	return nil
}

// served records the backends that ran a product natively in these tests,
// for UNDERFLOW_REQUIRE_BACKEND.
var served = map[string]bool{}

func TestMain(m *testing.M) {
	if err := checkTestBackends(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		os.Exit(1)
	}
	// The start-up backend's self-test runs now, not inside the first test:
	// its allocations run runtime code that does floating-point arithmetic
	// (allocation sampling, GC pacing), which sets MXCSR's sticky precision
	// flag, and the control-register tests compare the whole register
	// (seen when TestElementwiseRestoresControlRegister ran first).
	serving()
	code := m.Run()
	if req := os.Getenv("UNDERFLOW_REQUIRE_BACKEND"); req != "" && code == 0 && !served[req] {
		fmt.Fprintf(os.Stderr, "FAIL: UNDERFLOW_REQUIRE_BACKEND=%s, but backend %s served no product in these tests (available here: %s)\n",
			req, req, strings.Join(AvailableBackends(), ", "))
		code = 1
	}
	os.Exit(code)
}

// TestListBackends prints the SIMD backends this machine runs, for the
// Makefile: `go test ./kernels -run '^TestListBackends$' -v | sed -n 's/^backends: //p'`.
func TestListBackends(t *testing.T) {
	var simd []string
	for _, name := range AvailableBackends() {
		if name != "purego" {
			simd = append(simd, name)
		}
	}
	fmt.Printf("backends: %s\n", strings.Join(simd, " "))
}

func TestForcedBackend(t *testing.T) {
	if want := os.Getenv("UNDERFLOW_BACKEND"); want != "" && Backend() != want {
		t.Fatalf("UNDERFLOW_BACKEND=%s but Backend() = %s", want, Backend())
	}
	if AvailableBackends()[len(AvailableBackends())-1] != "purego" {
		t.Fatalf("AvailableBackends() = %v: purego must be last", AvailableBackends())
	}
	for _, name := range []string{"nonsense", "avx512", "neon", "avx2"} {
		ok := false
		for _, a := range AvailableBackends() {
			ok = ok || a == name
		}
		if ok {
			continue
		}
		_, err := selectBackend(name)
		if err == nil || !strings.Contains(err.Error(), "UNDERFLOW_BACKEND") || !strings.Contains(err.Error(), name) {
			t.Errorf("selectBackend(%q): error %v does not name the problem", name, err)
		}
	}
}

// A bad UNDERFLOW_BACKEND stops any program that links kernels before its
// main runs: exit status 2 and one line naming the variable, no panic trace.
// The test binary itself is that program.
func TestBadBackendEnvExits2(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test binary as a subprocess; not under -short (qemu)")
	}
	for _, name := range []string{"nonsense", "avx1024"} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "UNDERFLOW_BACKEND="+name)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		msg := strings.TrimRight(stderr.String(), "\n")
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || strings.Count(msg, "\n") != 0 ||
			!strings.Contains(msg, "UNDERFLOW_BACKEND") || !strings.Contains(msg, name) || strings.Contains(msg, "goroutine") {
			t.Errorf("UNDERFLOW_BACKEND=%s: %v, stderr %q; want exit 2 and one line naming it", name, err, msg)
		}
	}
}

// mmForm is one public product form.
type mmForm struct {
	name           string
	transA, transB bool
	acc            bool
	fn             func(env Env, dst, a, b []float32, m, k, n int)
}

var mmForms = []mmForm{
	{"MatMul", false, false, false, MatMul},
	{"MatMulAcc", false, false, true, MatMulAcc},
	{"MatMulTransA", true, false, false, MatMulTransA},
	{"MatMulTransAAcc", true, false, true, MatMulTransAAcc},
	{"MatMulTransB", false, true, false, MatMulTransB},
	{"MatMulTransBAcc", false, true, true, MatMulTransBAcc},
}

// mmOracle runs the canonical chain element by element through the scalar
// reference: independent of the blocked driver and of refProduct's loop order.
func mmOracle(env Env, f mmForm, dst, a, b []float32, m, k, n int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			if f.acc {
				s = dst[i*n+j]
			}
			for p := 0; p < k; p++ {
				x, y := a[i*k+p], b[p*n+j]
				if f.transA {
					x = a[p*m+i]
				}
				if f.transB {
					y = b[j*k+p]
				}
				s = FMA(env, x, y, s)
			}
			dst[i*n+j] = s
		}
	}
}

// withBackend runs fn with be serving the products. The start-up choice is
// resolved (self-tested) first, so that it does not replace be.
func withBackend(be *backend, fn func()) {
	serving()
	saved := active
	active = be
	defer func() { active = saved }()
	fn()
}

// mmValue draws a float32 near 2^exp: random significand and sign, with
// signed zeros, subnormals and the boundary significands mixed in.
func mmValue(r *rand.Rand, exp int) float32 {
	sign := uint32(r.IntN(2)) << 31
	switch x := r.IntN(100); {
	case x < 4:
		return math.Float32frombits(sign) // ±0
	case x < 8:
		return math.Float32frombits(sign | uint32(r.IntN(1<<23))) // subnormal
	case x < 12:
		e := max(1, min(254, exp+127+r.IntN(3)-1))
		sig := []uint32{0, 1, 0x7fffff, 0x7ffffe}[r.IntN(4)]
		return math.Float32frombits(sign | uint32(e)<<23 | sig)
	}
	e := max(1, min(254, exp+127+r.IntN(5)-2))
	return math.Float32frombits(sign | uint32(e)<<23 | uint32(r.IntN(1<<23)))
}

// mmScales are (exponent of a, exponent of b, exponent of a prefilled dst):
// products and partial sums land in the subnormal band and around 2^-126.
var mmScales = [][3]int{
	{-63, -63, -126},
	{-64, -62, -127},
	{0, -126, -126},
	{-30, -96, -125},
	{0, 0, 0},
	{-70, -60, -140},
}

type mmCase struct {
	m, k, n int
	a, b, c []float32 // c: the prefilled dst for the Acc forms
}

func newMMCase(r *rand.Rand, m, k, n int, scale [3]int) mmCase {
	gen := func(len, exp int) []float32 {
		x := make([]float32, len)
		for i := range x {
			x[i] = mmValue(r, exp)
		}
		return x
	}
	c := mmCase{m: m, k: k, n: n, a: gen(m*k, scale[0]), b: gen(k*n, scale[1]), c: gen(m*n, scale[2])}
	// Rows of zeros (a row of A, as stored, of either sign).
	if m*k > 0 && r.IntN(3) == 0 {
		row := r.IntN(max(1, len(c.a)/k))
		neg := uint32(r.IntN(2)) << 31
		for i := row * k; i < min(len(c.a), (row+1)*k); i++ {
			c.a[i] = math.Float32frombits(neg)
		}
	}
	return c
}

// mmCheck runs form f of case c in env on every backend this machine has
// and compares each with the oracle, bit for bit.
func mmCheck(t *testing.T, env Env, f mmForm, c mmCase) {
	t.Helper()
	bes := testBackendsIn(env)
	if len(bes) == 0 {
		return
	}
	want := append([]float32(nil), c.c...)
	mmOracle(env, f, want, c.a, c.b, c.m, c.k, c.n)
	for _, be := range bes {
		got := append([]float32(nil), c.c...)
		if !f.acc {
			for i := range got {
				got[i] = float32(math.NaN()) // must be overwritten
			}
		}
		withBackend(be, func() {
			f.fn(env, got, c.a, c.b, c.m, c.k, c.n)
			if Native(env) {
				served[be.name] = true
			}
		})
		for i := range want {
			bothNaN := got[i] != got[i] && want[i] != want[i] // NaNs compare by class
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !bothNaN {
				t.Fatalf("%s %s %s m=%d k=%d n=%d: element (%d,%d) = %#08x (%g), reference %#08x (%g)",
					be.name, env, f.name, c.m, c.k, c.n, i/c.n, i%c.n,
					math.Float32bits(got[i]), got[i], math.Float32bits(want[i]), want[i])
			}
		}
	}
}

// mmShapes are the shapes every form and environment runs: tails of the
// 6×16, 10×32 and 10×8 tiles, K-blocks (kc = 192, 256) and row blocks
// (mc = 120 on x86, 128 on NEON; TestMatMulShapesCoverEveryPath checks).
func mmShapes(r *rand.Rand) [][3]int {
	shapes := [][3]int{
		{0, 0, 0}, {0, 5, 3}, {3, 0, 5}, {4, 5, 0}, {1, 1, 1}, {1, 7, 1}, {6, 4, 16}, {10, 3, 32}, {14, 3, 32},
		{7, 9, 17}, {13, 31, 33}, {5, 260, 15}, {29, 513, 47}, {121, 40, 18}, {125, 17, 70}, {11, 193, 9},
		{3, 5, 1100}, {131, 9, 20},
	}
	count := 25
	if testing.Short() {
		count = 6
	}
	for range count {
		shapes = append(shapes, [3]int{1 + r.IntN(70), 1 + r.IntN(70), 1 + r.IntN(70)})
	}
	// A few up to about 300, kept small in volume.
	big := 3
	if testing.Short() {
		big = 1
	}
	for range big {
		shapes = append(shapes, [3]int{1 + r.IntN(300), 1 + r.IntN(40), 1 + r.IntN(300)})
		shapes = append(shapes, [3]int{1 + r.IntN(40), 200 + r.IntN(100), 1 + r.IntN(40)})
	}
	return shapes
}

// coverageKernels are the kernels whose blocking TestMatMulShapesCoverEveryPath
// checks: every test backend's, and (matmul_twin_amd64_test.go) those this
// CPU cannot run but another stage runs with the same shapes.
var coverageKernels = map[string]*microKernel{}

// TestMatMulShapesCoverEveryPath: the shapes every form and environment runs
// (-short included, which the emulated AVX-512 stage uses) reach every path
// of every kernel's blocking: whole row and column tiles, row and column
// tails, a K-block resume (k > kc), more rows than one row block (m > mc),
// more columns than one B block (n > nc), and the packers' fast paths
// (whole panels with kb >= 8 for the transposing one).
func TestMatMulShapesCoverEveryPath(t *testing.T) {
	kerns := maps.Clone(coverageKernels)
	for _, be := range testBackends() {
		if be.kern != nil {
			kerns[be.name] = be.kern
		}
	}
	shapes := mmShapes(rand.New(rand.NewPCG(1, 2))) // TestMatMulBackendsMatchReference's
	for name, k := range kerns {
		paths := map[string]bool{}
		for _, sh := range shapes {
			m, kk, n := sh[0], sh[1], sh[2]
			if m == 0 || kk == 0 || n == 0 {
				continue
			}
			paths["whole row tile"] = paths["whole row tile"] || m >= k.mr
			paths["row tail"] = paths["row tail"] || m%k.mr != 0
			paths["whole column tile"] = paths["whole column tile"] || n >= k.nr
			paths["column tail"] = paths["column tail"] || n%k.nr != 0
			paths["K-block resume"] = paths["K-block resume"] || kk > k.kc
			paths["several row blocks"] = paths["several row blocks"] || m > k.mc
			paths["several B blocks"] = paths["several B blocks"] || n > k.nc
			paths["transposing packer"] = paths["transposing packer"] || n >= k.nr && min(kk, k.kc) >= 8
		}
		for _, p := range []string{"whole row tile", "row tail", "whole column tile", "column tail", "K-block resume",
			"several row blocks", "several B blocks", "transposing packer"} {
			if !paths[p] {
				t.Errorf("%s (tile %d×%d, kc %d, mc %d, nc %d): no shape reaches the %s", name, k.mr, k.nr, k.kc, k.mc, k.nc, p)
			}
		}
	}
	if testing.Short() && len(kerns) == 0 {
		t.Log("no SIMD kernel here")
	}
}

func TestMatMulBackendsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for si, sh := range mmShapes(r) {
		scale := mmScales[si%len(mmScales)]
		c := newMMCase(r, sh[0], sh[1], sh[2], scale)
		for _, env := range Envs {
			for _, f := range mmForms {
				mmCheck(t, env, f, c)
			}
		}
	}
}

func TestMatMulParallelSameBits(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	shapes := [][3]int{{203, 70, 97}, {5, 300, 1000}} // row split; column split
	if testing.Short() {
		shapes = [][3]int{{61, 70, 97}, {5, 100, 700}}
	}
	for _, sh := range shapes {
		m, k, n := sh[0], sh[1], sh[2]
		c := newMMCase(r, m, k, n, mmScales[0])
		for _, env := range []Env{IEEE, FTZDAZ, ArmFZ} {
			bes := testBackendsIn(env)
			if len(bes) == 0 {
				continue
			}
			want := make([]float32, m*n)
			mmOracle(env, mmForms[0], want, c.a, c.b, m, k, n)
			// The transposed forms get the same operands stored transposed.
			at, bt := make([]float32, k*m), make([]float32, n*k)
			for i := 0; i < m; i++ {
				for p := 0; p < k; p++ {
					at[p*m+i] = c.a[i*k+p]
				}
			}
			for p := 0; p < k; p++ {
				for j := 0; j < n; j++ {
					bt[j*k+p] = c.b[p*n+j]
				}
			}
			forms := []struct {
				name string
				f    func(got []float32, threads int)
			}{
				{"MatMulParallel", func(got []float32, threads int) { MatMulParallel(env, got, c.a, c.b, m, k, n, threads) }},
				{"MatMulTransAParallel", func(got []float32, threads int) { MatMulTransAParallel(env, got, at, c.b, m, k, n, threads) }},
				{"MatMulTransBParallel", func(got []float32, threads int) { MatMulTransBParallel(env, got, c.a, bt, m, k, n, threads) }},
			}
			for _, be := range bes {
				for _, form := range forms {
					for _, threads := range []int{1, 2, 3, 7} {
						got := make([]float32, m*n)
						withBackend(be, func() { form.f(got, threads) })
						for i := range want {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%s %s %s m=%d k=%d n=%d threads=%d: element %d = %#08x, reference %#08x",
									be.name, env, form.name, m, k, n, threads, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
							}
						}
					}
				}
			}
		}
	}
}

// TestMatMulSubnormalBand builds chains that sit on the flush boundary on
// purpose: every product is exactly ±2^-127 or ±(2^-126 - 2^-150)-ish, so
// partial sums cross the band edges at every step.
func TestMatMulSubnormalBand(t *testing.T) {
	vals := []float32{
		math.Float32frombits(0x3f7fffff), math.Float32frombits(0x3f800000), math.Float32frombits(0x3f800001),
		math.Float32frombits(0xbf7fffff), math.Float32frombits(0xbf800000), 0.5, -0.5,
	}
	bvals := []float32{
		math.Float32frombits(0x00800000), math.Float32frombits(0x80800000), math.Float32frombits(0x00800001),
		math.Float32frombits(0x007fffff), math.Float32frombits(0x80000001), 0, float32(math.Copysign(0, -1)),
	}
	r := rand.New(rand.NewPCG(5, 6))
	m, k, n := 19, 37, 41
	c := mmCase{m: m, k: k, n: n, a: make([]float32, m*k), b: make([]float32, k*n), c: make([]float32, m*n)}
	for i := range c.a {
		c.a[i] = vals[r.IntN(len(vals))]
	}
	for i := range c.b {
		c.b[i] = bvals[r.IntN(len(bvals))]
	}
	for i := range c.c {
		c.c[i] = bvals[r.IntN(len(bvals))]
	}
	for _, env := range Envs {
		for _, f := range mmForms {
			mmCheck(t, env, f, c)
		}
	}
}

func TestMatMulShortSlicesPanic(t *testing.T) {
	for _, f := range mmForms {
		for _, tc := range []struct{ a, b, c int }{{5, 6, 4}, {6, 5, 4}, {6, 6, 3}} {
			func() {
				defer func() {
					msg := fmt.Sprint(recover())
					if !strings.Contains(msg, "slices too short") || !strings.Contains(msg, f.name) {
						t.Errorf("%s with lengths %v: panic %q, want a message naming the short slice", f.name, tc, msg)
					}
				}()
				f.fn(IEEE, make([]float32, tc.c), make([]float32, tc.a), make([]float32, tc.b), 2, 3, 2)
			}()
		}
	}
	func() {
		defer func() {
			if msg := fmt.Sprint(recover()); !strings.Contains(msg, "negative dimension") {
				t.Errorf("negative m: panic %q", msg)
			}
		}()
		MatMul(IEEE, nil, nil, nil, -1, 0, 0)
	}()
	func() {
		defer func() {
			if msg := fmt.Sprint(recover()); !strings.Contains(msg, "overflow") {
				t.Errorf("m*k overflowing int: panic %q", msg)
			}
		}()
		// m*k wraps to a negative size: it must not pass as "long enough".
		MatMul(IEEE, nil, nil, nil, math.MaxInt/2+1, 2, 0)
	}()
}

// FuzzMatMul explores shapes, scales and environments: every backend
// against the oracle.
func FuzzMatMul(f *testing.F) {
	f.Add(uint64(1), uint8(7), uint16(9), uint8(17), int8(-63), int8(-63), uint8(0), uint8(0))
	f.Add(uint64(2), uint8(13), uint16(300), uint8(33), int8(0), int8(-126), uint8(3), uint8(1))
	f.Add(uint64(3), uint8(1), uint16(1), uint8(1), int8(-70), int8(-60), uint8(4), uint8(5))
	f.Fuzz(func(t *testing.T, seed uint64, m uint8, k uint16, n uint8, ea, eb int8, envIdx, formIdx uint8) {
		r := rand.New(rand.NewPCG(seed, 7))
		c := newMMCase(r, int(m%80), int(k%600), int(n%80), [3]int{int(ea), int(eb), int(ea) + int(eb)})
		env := Envs[int(envIdx)%len(Envs)]
		mmCheck(t, env, mmForms[int(formIdx)%len(mmForms)], c)
	})
}

// TestFMAChainStep checks the purego shortcut against the reference on the
// boundary operands, weighted random ones, and built double-rounding ties.
func TestFMAChainStep(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	check := func(env Env, a, b, c float32) {
		a, b, c = daz(env, a), daz(env, b), daz(env, c)
		got, want := fmaChainStep(env, a, b, c), FMA(env, a, b, c)
		if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Fatalf("%s fma(%#08x, %#08x, %#08x) = %#08x, reference %#08x", env,
				math.Float32bits(a), math.Float32bits(b), math.Float32bits(c), math.Float32bits(got), math.Float32bits(want))
		}
	}
	bound := boundaryOperands()
	n := 200000
	if testing.Short() {
		n = 20000
	}
	for _, env := range Envs {
		for range n {
			check(env, bound[r.IntN(len(bound))], bound[r.IntN(len(bound))], bound[r.IntN(len(bound))])
			check(env, weightedRandom(r), weightedRandom(r), weightedRandom(r))
			// Ties: c plus a product just above or below half an ulp of c.
			c := mmValue(r, r.IntN(250)-125)
			ce := int(math.Float32bits(c)>>23&0xff) - 127
			a := float32(math.Ldexp(1+float64(r.IntN(4))*0x1p-23, ce-24-r.IntN(3)))
			b := float32(1 + float64(r.IntN(3)-1)*0x1p-23)
			if r.IntN(2) == 0 {
				a = -a
			}
			check(env, a, b, c)
		}
	}
}

// TestMatMulNoAllocs: a product allocates nothing once its scratch exists
// (callers run it once per layer and step).
func TestMatMulNoAllocs(t *testing.T) {
	m, k, n := 37, 300, 45
	a, b, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
	for _, be := range testBackends() {
		withBackend(be, func() {
			for _, f := range mmForms {
				f.fn(IEEE, c, a, b, m, k, n)
				if allocs := testing.AllocsPerRun(3, func() { f.fn(IEEE, c, a, b, m, k, n) }); allocs != 0 {
					t.Errorf("%s %s: %v allocations per call", be.name, f.name, allocs)
				}
			}
		})
	}
}

// TestMatMulSpecials: infinities, NaNs, overflow and the largest values,
// mixed with subnormal-band ones; NaN results compare by class.
func TestMatMulSpecials(t *testing.T) {
	specials := []float32{
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		math.MaxFloat32, -math.MaxFloat32, 0x1p64, -0x1p100, 0x1p-63, -0x1p-64,
		math.Float32frombits(0x00800000), math.Float32frombits(0x80000001), 0, float32(math.Copysign(0, -1)),
	}
	r := rand.New(rand.NewPCG(10, 11))
	for _, sh := range [][3]int{{7, 5, 19}, {13, 40, 33}, {1, 3, 1}} {
		m, k, n := sh[0], sh[1], sh[2]
		c := mmCase{m: m, k: k, n: n, a: make([]float32, m*k), b: make([]float32, k*n), c: make([]float32, m*n)}
		for _, x := range [][]float32{c.a, c.b, c.c} {
			for i := range x {
				if r.IntN(8) == 0 {
					x[i] = specials[r.IntN(len(specials))]
				} else {
					x[i] = mmValue(r, -63)
				}
			}
		}
		for _, env := range Envs {
			for _, f := range mmForms {
				mmCheck(t, env, f, c)
			}
		}
	}
}

// Package variables, so the compiler cannot fold the arithmetic below.
var modeProbeTiny, modeProbeHalf = float32(0x1p-126), float32(0.5)

// TestMatMulRestoresFloatMode: after a product in every environment, plain
// Go arithmetic on the same thread still has gradual underflow and keeps
// subnormal inputs, so no kernel leaked its MXCSR or FPCR setting.
func TestMatMulRestoresFloatMode(t *testing.T) {
	m, k, n := 7, 9, 17
	a, b, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
	for _, be := range testBackends() {
		withBackend(be, func() {
			for _, env := range Envs {
				for _, f := range mmForms {
					f.fn(env, c, a, b, m, k, n)
					sub := modeProbeTiny * modeProbeHalf // 2^-127: flushed under FTZ
					if math.Float32bits(sub) != 0x00400000 {
						t.Fatalf("%s %s %s: afterwards 2^-126 * 0.5 = %#08x, want 0x00400000 (FTZ left on)", be.name, env, f.name, math.Float32bits(sub))
					}
					if twice := sub + sub; math.Float32bits(twice) != 0x00800000 {
						t.Fatalf("%s %s %s: afterwards 2^-127 + 2^-127 = %#08x, want 0x00800000 (DAZ left on)", be.name, env, f.name, math.Float32bits(twice))
					}
				}
			}
		})
	}
}
