package probe

// The reference against the hardware, bit for bit, in every environment the
// running CPU honours (probe.go). On amd64 the CPU is the ground truth for
// the four x86 environments; on arm64 (qemu-aarch64 here) for IEEE and Arm FZ.

import (
	"fmt"
	"iter"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seed8b67a5e0/underflow/kernels"
)

// TestRequiredUnits fails unless every probe unit UNDERFLOW_REQUIRE_PROBE_UNITS
// names (comma-separated) is among Units(), so that a run meant for a
// given unit (the AVX-512 stage's avx512 and avx512-mem) cannot pass
// without it.
func TestRequiredUnits(t *testing.T) {
	req := os.Getenv("UNDERFLOW_REQUIRE_PROBE_UNITS")
	if req == "" {
		t.Skip("UNDERFLOW_REQUIRE_PROBE_UNITS not set")
	}
	var have []string
	for _, u := range Units() {
		have = append(have, u.Name)
	}
	for _, name := range strings.Split(req, ",") {
		if !slices.Contains(have, name) {
			t.Errorf("UNDERFLOW_REQUIRE_PROBE_UNITS names %q, but this CPU's probe units are %s", name, strings.Join(have, ", "))
		}
	}
}

// hwEnvs returns the environments to test on the hardware; it fails the test
// where the architecture has probes but reports none, and skips (with the
// reason) where this build has no probes at all.
func hwEnvs(t testing.TB) []kernels.Env {
	t.Helper()
	envs := HardwareEnvs()
	if len(Units()) == 0 {
		t.Skip("no hardware probes in this build (purego or an architecture without them)")
	}
	if len(envs) == 0 {
		t.Fatal("probes exist but HardwareEnvs is empty")
	}
	return envs
}

// hwChecker runs batches of cases through one unit and the reference and
// keeps count of the mismatches, reporting the first few.
type hwChecker struct {
	t                  testing.TB
	unit               Unit
	env                kernels.Env
	op                 Op
	a, b, c, got       []float32
	cases, mismatches  int
	reported, reportAt int
}

const hwBatch = 1 << 14

func newHWChecker(t testing.TB, u Unit, env kernels.Env, op Op) *hwChecker {
	return &hwChecker{t: t, unit: u, env: env, op: op, reportAt: 10,
		a: make([]float32, 0, hwBatch), b: make([]float32, 0, hwBatch),
		c: make([]float32, 0, hwBatch), got: make([]float32, hwBatch)}
}

func (h *hwChecker) add(x Triple) {
	h.a = append(h.a, x.A)
	h.b = append(h.b, x.B)
	h.c = append(h.c, x.C)
	if len(h.a) == hwBatch {
		h.flush()
	}
}

func (h *hwChecker) flush() {
	n := len(h.a)
	if n == 0 {
		return
	}
	got := h.got[:n]
	if err := h.unit.Run(h.env, h.op, got, h.a, h.b, h.c); err != nil {
		h.t.Fatalf("%s %v %v: %v", h.unit.Name, h.env, h.op, err)
	}
	for i := 0; i < n; i++ {
		want := h.op.Reference(h.env, h.a[i], h.b[i], h.c[i])
		if !kernels.SameResult(got[i], want) {
			h.mismatches++
			if h.reported < h.reportAt {
				h.reported++
				h.t.Errorf("%s %v %v(%08x, %08x, %08x): hardware %08x, reference %08x",
					h.unit.Name, h.env, h.op, math.Float32bits(h.a[i]), math.Float32bits(h.b[i]),
					math.Float32bits(h.c[i]), math.Float32bits(got[i]), math.Float32bits(want))
			}
		}
	}
	h.cases += n
	h.a, h.b, h.c = h.a[:0], h.b[:0], h.c[:0]
}

// checkAll runs every case of seq and returns the number of cases run.
func checkAll(t testing.TB, u Unit, env kernels.Env, op Op, seq iter.Seq[Triple]) int {
	h := newHWChecker(t, u, env, op)
	for x := range seq {
		h.add(x)
	}
	h.flush()
	if h.mismatches > 0 {
		t.Errorf("%s %v %v: %d of %d cases differ from the reference", u.Name, env, op, h.mismatches, h.cases)
	}
	return h.cases
}

func edgeTriples() iter.Seq[Triple] {
	return func(yield func(Triple) bool) {
		for _, e := range EdgeCases() {
			x := e.Triple()
			// Both orders of a and b, and both signs of c.
			for _, t := range []Triple{x, {x.B, x.A, x.C}, {x.A, x.B, -x.C}, {-x.A, x.B, x.C}} {
				if !yield(t) {
					return
				}
			}
		}
	}
}

// every returns every stride-th case of seq: a deterministic sample.
func every(stride int, seq iter.Seq[Triple]) iter.Seq[Triple] {
	return func(yield func(Triple) bool) {
		i := 0
		for x := range seq {
			if i%stride == 0 && !yield(x) {
				return
			}
			i++
		}
	}
}

// level1Stride is 1 (the whole level-1 set) unless the run is short or
// UNDERFLOW_LEVEL1_STRIDE says otherwise: then every stride-th pattern
// combination is run, with all its cases (a deterministic sample).
func level1Stride(t testing.TB) int {
	if s := os.Getenv("UNDERFLOW_LEVEL1_STRIDE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("UNDERFLOW_LEVEL1_STRIDE=%q: want a positive integer", s)
		}
		return n
	}
	if testing.Short() {
		return 61 // prime, so the sample walks through all 9 subcases
	}
	return 1
}

func TestProbeEdgeCases(t *testing.T) {
	envs := hwEnvs(t)
	for _, u := range Units() {
		for _, env := range envs {
			for _, op := range Ops {
				if u.Has(op) {
					checkAll(t, u, env, op, edgeTriples())
				}
			}
		}
	}
}

// TestProbeSetsEnvironment guards the probes themselves: the contract's
// examples must come out of the hardware as the contract says, so a probe
// that ignored its environment could not pass by agreeing with itself.
func TestProbeSetsEnvironment(t *testing.T) {
	envs := hwEnvs(t)
	bits := math.Float32frombits
	cases := []struct {
		env     kernels.Env
		op      Op
		a, b, c uint32
		want    uint32
	}{
		{kernels.IEEE, OpMul, 0x3f7fffff, 0x00800000, 0, 0x00800000},
		{kernels.FTZ, OpMul, 0x3f7fffff, 0x00800000, 0, 0},
		{kernels.FTZ, OpMul, 0x3f000001, 0x00fffffe, 0, 0x00800000}, // band: x86 keeps min
		{kernels.ArmFZ, OpMul, 0x3f000001, 0x00fffffe, 0, 0},        // band: Arm flushes
		{kernels.ArmFZ, OpMul, 0xbf7fffff, 0x00800000, 0, 0x80000000},
		{kernels.FTZDAZ, OpMul, 0x3f000001, 0x00fffffe, 0, 0x00800000},
		{kernels.FTZ, OpFMA, 0x80400000, 0x3f800000, 0, 0x80000000},
		{kernels.DAZ, OpFMA, 0x80400000, 0x3f800000, 0, 0},
		{kernels.IEEE, OpFMA, 0x80400000, 0x3f800000, 0, 0x80400000},
		{kernels.FTZ, OpFMA, 0x20000000, 0x1f800000, 0x00c00000, 0x01000000},
		{kernels.FTZ, OpMulAdd, 0x20000000, 0x1f800000, 0x00c00000, 0x00c00000},
		{kernels.IEEE, OpFMA, 0x33800001, 0x3f7ffffe, 0x3f800001, 0x3f800001},
		{kernels.DAZ, OpMulAdd, 0x3f000000, 0x00800000, 0x00800000, 0x00800000},
		{kernels.IEEE, OpMulAdd, 0x3f000000, 0x00800000, 0x00800000, 0x00c00000},
	}
	honoured := map[kernels.Env]bool{}
	for _, e := range envs {
		honoured[e] = true
	}
	checked := 0
	for _, u := range Units() {
		for _, c := range cases {
			if !honoured[c.env] || !u.Has(c.op) {
				continue
			}
			dst := make([]float32, u.Lanes)
			a, b, cc := make([]float32, u.Lanes), make([]float32, u.Lanes), make([]float32, u.Lanes)
			for i := range dst {
				a[i], b[i], cc[i] = bits(c.a), bits(c.b), bits(c.c)
			}
			if err := u.Run(c.env, c.op, dst, a, b, cc); err != nil {
				t.Fatal(err)
			}
			for i, got := range dst {
				if math.Float32bits(got) != c.want {
					t.Errorf("%s lane %d %v %v(%08x, %08x, %08x) = %08x, want %08x",
						u.Name, i, c.env, c.op, c.a, c.b, c.c, math.Float32bits(got), c.want)
				}
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no case ran")
	}
}

// TestProbeLevel1TwoOperands runs TestFloat's two-operand level-1 set
// (46,464 cases) through every unit, for mul, add and div.
func TestProbeLevel1TwoOperands(t *testing.T) {
	envs := hwEnvs(t)
	stride := level1Stride(t)
	for _, u := range Units() {
		for _, env := range envs {
			for _, op := range []Op{OpMul, OpAdd, OpDiv} {
				n := checkAll(t, u, env, op, TestFloatLevel1Sample(2, 1, stride))
				if stride == 1 && n != TestFloatLevel1Count(2) {
					t.Fatalf("level 1 gave %d cases, want %d", n, TestFloatLevel1Count(2))
				}
			}
		}
	}
}

// TestProbeLevel1ThreeOperands runs TestFloat's three-operand level-1 set
// (6,133,248 cases) for fma and mul_add in every environment, through the
// widest unit (8 or 16 lanes per instruction), and a sample of it through
// every other unit. The cases are generated once and kept (74 MB).
func TestProbeLevel1ThreeOperands(t *testing.T) {
	envs := hwEnvs(t)
	stride := level1Stride(t)
	start := time.Now()
	cases := slices.Collect(TestFloatLevel1Sample(3, 2, stride))
	if stride == 1 && len(cases) != TestFloatLevel1Count(3) {
		t.Fatalf("level 1 gave %d cases, want %d", len(cases), TestFloatLevel1Count(3))
	}
	generated := time.Since(start)
	total := 0
	for _, op := range []Op{OpFMA, OpMulAdd} {
		widest, ok := Widest(op)
		if !ok {
			t.Fatalf("no unit runs %v", op)
		}
		for _, u := range Units() {
			if !u.Has(op) {
				continue
			}
			seq := slices.Values(cases)
			if u.Name != widest.Name {
				seq = every(97, seq)
			}
			for _, env := range envs {
				total += checkAll(t, u, env, op, seq)
			}
		}
	}
	t.Logf("%d cases checked (level-1 stride %d on the widest unit) in %v, %v of it generating",
		total, stride, time.Since(start), generated)
}

// TestProbeRandom runs weighted random cases, a third aimed at ±2^-126,
// through every unit for every operation.
func TestProbeRandom(t *testing.T) {
	envs := hwEnvs(t)
	n := 200000
	if testing.Short() {
		n = 20000
	}
	for _, u := range Units() {
		for _, env := range envs {
			for _, op := range Ops {
				if u.Has(op) {
					checkAll(t, u, env, op, RandomCases(n, 3+uint64(op)))
				}
			}
		}
	}
}

// TestProbeTail checks lengths that are not a multiple of the lanes.
func TestProbeTail(t *testing.T) {
	envs := hwEnvs(t)
	for _, u := range Units() {
		for n := 0; n <= 2*u.Lanes+1; n++ {
			var cases []Triple
			for x := range RandomCases(n, 7) {
				cases = append(cases, x)
			}
			got := make([]float32, n+1)
			got[n] = 42 // must stay untouched
			a, b, c := make([]float32, n), make([]float32, n), make([]float32, n)
			for i, x := range cases {
				a[i], b[i], c[i] = x.A, x.B, x.C
			}
			if err := u.Run(envs[len(envs)-1], OpFMA, got[:n], a, b, c); err != nil {
				if err == ErrNoProbe && !u.Has(OpFMA) {
					continue
				}
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				if want := kernels.FMA(envs[len(envs)-1], a[i], b[i], c[i]); !kernels.SameResult(got[i], want) {
					t.Errorf("%s n=%d lane %d: %08x, want %08x", u.Name, n, i, math.Float32bits(got[i]), math.Float32bits(want))
				}
			}
			if got[n] != 42 {
				t.Errorf("%s n=%d wrote past dst", u.Name, n)
			}
		}
	}
}

// TestProbeRejects checks that environments the CPU does not honour, and
// short operands, are refused rather than run in the wrong mode.
func TestProbeRejects(t *testing.T) {
	hwEnvs(t)
	honoured := map[kernels.Env]bool{}
	for _, e := range HardwareEnvs() {
		honoured[e] = true
	}
	u := Units()[0]
	dst := make([]float32, 4)
	for _, e := range kernels.Envs {
		err := u.Run(e, OpMul, dst, dst, dst, nil)
		if honoured[e] != (err == nil) {
			t.Errorf("%v: honoured %v but Run returned %v", e, honoured[e], err)
		}
	}
	if err := u.Run(kernels.IEEE, OpFMA, dst, dst, dst, dst[:1]); err == nil {
		t.Error("short c accepted")
	}
}

func TestLevel1Counts(t *testing.T) {
	if got := TestFloatLevel1Count(3); got != 6133248 {
		t.Errorf("three-operand level 1: %d cases, want 6133248", got)
	}
	n := 0
	first := map[int]Triple{}
	for x := range TestFloatLevel1(2, 1) {
		if n < 6 {
			first[n] = x
		}
		n++
	}
	if n != TestFloatLevel1Count(2) || n != 46464 {
		t.Errorf("two-operand level 1 yielded %d, want %d = 46464", n, TestFloatLevel1Count(2))
	}
	// A sample holds exactly the full set's cases at its combinations.
	var full, sample []Triple
	for x := range TestFloatLevel1(3, 5) {
		if len(full) == 9*40 {
			break
		}
		full = append(full, x)
	}
	for x := range TestFloatLevel1Sample(3, 5, 13) {
		if len(sample) == 9*3 {
			break
		}
		sample = append(sample, x)
	}
	for k := 0; k < 3; k++ {
		for j := 0; j < 9; j++ {
			if fmt.Sprint(sample[9*k+j]) != fmt.Sprint(full[9*13*k+j]) {
				t.Errorf("sample case %d of combination %d differs from the full set", j, 13*k)
			}
		}
	}
	// Deterministic: the same seed gives the same cases.
	i := 0
	for x := range TestFloatLevel1(2, 1) {
		if i == 6 {
			break
		}
		if fmt.Sprint(x) != fmt.Sprint(first[i]) {
			t.Errorf("case %d differs between runs: %v, %v", i, x, first[i])
		}
		i++
	}
}
