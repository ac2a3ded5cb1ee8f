package main

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/klauspost/cpuid/v2"

	"github.com/seed8b67a5e0/underflow/kernels"
	"github.com/seed8b67a5e0/underflow/kernels/probe"
)

func cpuName() string {
	if name := strings.TrimSpace(cpuid.CPU.BrandName); name != "" {
		return name
	}
	return "unknown " + runtime.GOARCH + " CPU"
}

// runReport prints what this CPU does: identity, environments, the suite
// against the reference, the tininess rule and the denormal penalty.
func runReport(perOp int, bench bool, stdout, stderr io.Writer) int {
	c := cpuid.CPU
	fmt.Fprintf(stdout, "CPU:          %s\n", cpuName())
	vendor := c.VendorString
	if vendor == "" {
		vendor = c.VendorID.String()
	}
	fmt.Fprintf(stdout, "              vendor %s, family %d model %d stepping %d, %s/%s, %d logical CPUs\n",
		vendor, c.Family, c.Model, c.Stepping, runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	var feats []string
	for _, f := range []cpuid.FeatureID{cpuid.SSE2, cpuid.AVX, cpuid.AVX2, cpuid.FMA3, cpuid.AVX512F, cpuid.ASIMD, cpuid.FP, cpuid.SVE} {
		if c.Supports(f) {
			feats = append(feats, f.String())
		}
	}
	fmt.Fprintf(stdout, "Features:     %s\n", orNone(strings.Join(feats, " ")))
	var units []string
	for _, u := range probe.Units() {
		units = append(units, fmt.Sprintf("%s(%d)", u.Name, u.Lanes))
	}
	fmt.Fprintf(stdout, "Probe units:  %s\n", orNone(strings.Join(units, " ")))
	envs := probe.HardwareEnvs()
	var not []string
	for _, e := range kernels.Envs {
		if !probe.HardwareHonours(e) {
			not = append(not, e.String())
		}
	}
	fmt.Fprintf(stdout, "Honours:      %s (natively; not: %s)\n", orNone(envNames(envs)), strings.Join(not, " "))
	fmt.Fprintf(stdout, "Matmul:       backend %s\n", kernels.Backend())
	selfTestErr := printSelfTest(stdout)
	fmt.Fprintln(stdout)
	if len(envs) == 0 {
		fmt.Fprintln(stdout, "No hardware probes in this build: nothing to compare.")
		if selfTestErr != nil {
			return exitFailed
		}
		return exitOK
	}

	start := time.Now()
	cases := buildSuite(envs, perOp)
	type key struct {
		env kernels.Env
		op  probe.Op
	}
	counts := map[key]int{}
	for _, c := range cases {
		counts[key{c.Env, c.Op}]++
	}
	ref := make([]uint32, len(cases))
	for i, c := range cases {
		ref[i] = referenceResult(c)
	}
	probeUnits := probe.Units()
	mism := make([]map[key]int, len(probeUnits))
	total := 0
	for ui, u := range probeUnits {
		mism[ui] = map[key]int{}
		res, ran, err := hardwareResults(u, cases)
		if err != nil {
			fmt.Fprintf(stderr, "ftzcheck: %s: %v\n", u.Name, err)
			return exitError
		}
		for i, c := range cases {
			if ran[i] && !same(res[i], ref[i]) {
				mism[ui][key{c.Env, c.Op}]++
				total++
				if total <= 10 {
					fmt.Fprintf(stdout, "MISMATCH %s on %s: hardware %08x, reference %08x\n", c, u.Name, res[i], ref[i])
				}
			} else if !ran[i] && u.Has(c.Op) {
				mism[ui][key{c.Env, c.Op}] = -1 // cannot happen: envs are the honoured ones
			}
		}
	}
	fmt.Fprintf(stdout, "Built-in suite against the exact reference (edge cases, TestFloat level-1 sample, weighted random; %v):\n", time.Since(start).Round(time.Millisecond))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	hdr := "env\top\tcases\t"
	for _, u := range probeUnits {
		hdr += "mismatches " + u.Name + "\t"
	}
	fmt.Fprintln(tw, hdr)
	for _, e := range envs {
		for _, op := range probe.Ops {
			k := key{e, op}
			line := fmt.Sprintf("%s\t%s\t%d\t", e, op, counts[k])
			for ui, u := range probeUnits {
				if u.Has(op) {
					line += fmt.Sprintf("%d\t", mism[ui][k])
				} else {
					line += "n/a\t"
				}
			}
			fmt.Fprintln(tw, line)
		}
	}
	tw.Flush()
	fmt.Fprintf(stdout, "Total: %d cases x %d units, %d mismatches\n\n", len(cases), len(probeUnits), total)

	printTininess(stdout)
	if bench {
		fmt.Fprintln(stdout)
		printPenalty(stdout, envs)
	}
	if total > 0 || selfTestErr != nil {
		return exitFailed
	}
	return exitOK
}

// printSelfTest prints the outcome of kernels.SelfTest, the known-answer
// products and elementwise passes every SIMD backend must pass before it
// serves, and returns its error.
func printSelfTest(w io.Writer) error {
	var simd []string
	for _, b := range kernels.AvailableBackends() {
		if b != "purego" {
			simd = append(simd, b)
		}
	}
	err := kernels.SelfTest()
	switch {
	case err != nil:
		fmt.Fprintln(w, "Self-test:    FAILED (the backends below do not serve in this process):")
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(w, "              %s\n", line)
		}
	case len(simd) == 0:
		fmt.Fprintln(w, "Self-test:    no SIMD backend to test (purego is the reference)")
	default:
		fmt.Fprintf(w, "Self-test:    passed: %s (known-answer products and elementwise passes, bit for bit, in every environment each runs natively)\n",
			strings.Join(simd, ", "))
	}
	return err
}

// printTininess shows when the hardware decides that a result is tiny, with
// a product whose exact value lies in the band [2^-126 - 2^-151, 2^-126):
// (1+2^-23)/2 * (1-2^-23)*2^-125 = (1-2^-46)*2^-126. Tininess after rounding
// (x86) keeps the smallest normal; before rounding (Arm) flushes to zero.
func printTininess(w io.Writer) {
	a, b := math.Float32frombits(0x3f000001), math.Float32frombits(0x00fffffe)
	fmt.Fprintln(w, "Tininess, from mul 3f000001 00fffffe (exact (1-2^-46)*2^-126, inside the band):")
	any := false
	for _, env := range probe.HardwareEnvs() {
		if !env.FlushesOutputs() {
			continue
		}
		got, err := probe.Scalar(env, probe.OpMul, a, b, 0)
		if err != nil {
			continue
		}
		any = true
		rule := fmt.Sprintf("unexpected result %08x", math.Float32bits(got))
		switch math.Float32bits(got) {
		case 0x00800000:
			rule = "after rounding (kept 2^-126: the x86 rule)"
		case 0:
			rule = "before rounding (flushed to 0: the Arm rule)"
		}
		fmt.Fprintf(w, "  %-8s %08x  tininess detected %s\n", env, math.Float32bits(got), rule)
	}
	if !any {
		fmt.Fprintln(w, "  no flushing environment on this hardware")
	}
}

// printPenalty times 256×256×256 products (kernels.MatMul, the dispatched
// backend) on normal inputs, on inputs whose products and partial sums are
// subnormal, and on subnormal inputs, in each environment, and prints the
// slowdown. Best of a few repetitions, so that noise only adds.
func printPenalty(w io.Writer, envs []kernels.Env) {
	const n = 256
	r := rand.New(rand.NewPCG(1, 2))
	fill := func(scale float64) []float32 {
		x := make([]float32, n*n)
		for i := range x {
			v := (0.5 + 0.5*r.Float64()) * scale
			if r.IntN(2) == 0 {
				v = -v
			}
			x[i] = float32(v)
		}
		return x
	}
	normalA, normalB := fill(1), fill(1)
	// 2^-70 * 2^-70: products near 2^-141 and sums well below 2^-126.
	tinyA, tinyB := fill(0x1p-70), fill(0x1p-70)
	// Subnormal a (near 2^-130) times normal b: subnormal inputs and products.
	subA := fill(0x1p-130)
	dst := make([]float32, n*n)
	timeIt := func(env kernels.Env, a, b []float32) time.Duration {
		kernels.MatMul(env, dst, a, b, n, n, n) // warm up caches and clocks
		best := time.Duration(math.MaxInt64)
		deadline := time.Now().Add(2 * time.Second)
		for rep := 0; rep < 5; rep++ {
			t0 := time.Now()
			kernels.MatMul(env, dst, a, b, n, n, n)
			best = min(best, time.Since(t0))
			if rep >= 2 && time.Now().After(deadline) {
				break
			}
		}
		return best
	}
	// Warm up the clocks and caches for a while before the first timing.
	for t0 := time.Now(); time.Since(t0) < 300*time.Millisecond; {
		kernels.MatMul(kernels.IEEE, dst, normalA, normalB, n, n, n)
	}
	fmt.Fprintf(w, "Denormal penalty: %d×%d×%d products, kernels.MatMul (backend %s), best of up to 5 after a warm-up:\n", n, n, n, kernels.Backend())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "env\tnative\tnormal\tsubnormal products\tratio\tsubnormal inputs\tratio\t")
	all := slices.Clone(envs)
	for _, e := range kernels.Envs {
		if !slices.Contains(all, e) && kernels.Native(e) {
			all = append(all, e)
		}
	}
	for _, env := range all {
		tn := timeIt(env, normalA, normalB)
		tt := timeIt(env, tinyA, tinyB)
		ts := timeIt(env, subA, normalB)
		native := "yes"
		if !kernels.Native(env) {
			native = "no (reference)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%v\t%.2fx\t%v\t%.2fx\t\n", env, native,
			tn.Round(time.Microsecond), tt.Round(time.Microsecond), float64(tt)/float64(tn),
			ts.Round(time.Microsecond), float64(ts)/float64(tn))
	}
	tw.Flush()
}
