// Command ftzcheck shows what this CPU really does with float32 subnormals,
// and checks it against the exact reference of the kernels package.
//
// With no arguments it prints the CPU, the denormal environments it honours,
// a table of the built-in suite run on the hardware against the reference
// (environment × operation × cases × mismatches per probe unit), the
// tininess rule the hardware showed, and the slowdown of matrix products on
// subnormal against normal inputs in each environment.
//
//	ftzcheck -emit FILE   writes the suite with this machine's hardware results
//	ftzcheck -check FILE  checks a vector file against the reference, and
//	                      against this hardware where it honours the
//	                      environment; exit 1 if any case fails
//
// The vector-file format is described in internal/vectorfile.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/seed8b67a5e0/underflow/cmd/ftzcheck/internal/vectorfile"
	"github.com/seed8b67a5e0/underflow/kernels"
	"github.com/seed8b67a5e0/underflow/kernels/probe"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes: 0 all agree, 1 a case failed, 2 bad usage, input or I/O.
const (
	exitOK     = 0
	exitFailed = 1
	exitError  = 2
)

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ftzcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	emit := fs.String("emit", "", "write the built-in suite with this machine's hardware results to `FILE`")
	check := fs.String("check", "", "check the vector `FILE` against the reference and this hardware")
	perOp := fs.Int("n", 0, "generated cases per environment and operation (default 100000, or 1500 with -emit)")
	noBench := fs.Bool("nobench", false, "skip the denormal-penalty measurement")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: ftzcheck [-n N] [-nobench] | -emit FILE | -check FILE\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError
	}
	if fs.NArg() > 0 || (*emit != "" && *check != "") {
		fs.Usage()
		return exitError
	}
	if *perOp < 0 {
		fmt.Fprintf(stderr, "ftzcheck: -n %d: want a non-negative count\n", *perOp)
		return exitError
	}
	switch {
	case *check != "":
		return runCheck(*check, stdout, stderr)
	case *emit != "":
		n := *perOp
		if n == 0 {
			n = 1500
		}
		// The measurement takes a while: a folder that cannot take the file
		// is found first.
		if st, err := os.Stat(filepath.Dir(*emit)); err != nil || !st.IsDir() {
			fmt.Fprintf(stderr, "ftzcheck: -emit %s: folder %s does not exist\n", *emit, filepath.Dir(*emit))
			return exitError
		}
		return runEmit(*emit, n, stdout, stderr)
	}
	n := *perOp
	if n == 0 {
		n = 100000
	}
	return runReport(n, !*noBench, stdout, stderr)
}

// runEmit measures the suite on every probe unit, requires the units to
// agree, and writes the results atomically.
func runEmit(path string, perOp int, stdout, stderr io.Writer) int {
	envs := probe.HardwareEnvs()
	if len(envs) == 0 {
		fmt.Fprintf(stderr, "ftzcheck: this build has no hardware probes (%s/%s, backend %s): nothing to measure\n",
			runtime.GOOS, runtime.GOARCH, kernels.Backend())
		return exitError
	}
	cases := buildSuite(envs, perOp)
	measured := make([]bool, len(cases))
	var units []string
	for _, u := range probe.Units() {
		res, ran, err := hardwareResults(u, cases)
		if err != nil {
			fmt.Fprintf(stderr, "ftzcheck: %s: %v\n", u.Name, err)
			return exitError
		}
		units = append(units, u.Name)
		for i := range cases {
			if !ran[i] {
				continue
			}
			if !measured[i] {
				cases[i].Result, measured[i] = res[i], true
			} else if !same(cases[i].Result, res[i]) {
				fmt.Fprintf(stderr, "ftzcheck: probe units disagree on %s: %08x and %08x (%s); not writing %s\n",
					cases[i], cases[i].Result, res[i], u.Name, path)
				return exitFailed
			}
		}
	}
	kept := cases[:0]
	for i, c := range cases {
		if measured[i] {
			kept = append(kept, c)
		}
	}
	header := []string{
		"ftzcheck vector file: ENV OP A B C RESULT (float32 bits in hex; C is - for two-operand ops)",
		"RESULT was measured on this machine's hardware, not derived from the reference.",
		fmt.Sprintf("cpu: %s (%s/%s)", cpuName(), runtime.GOOS, runtime.GOARCH),
		fmt.Sprintf("environments: %s; probe units, all agreeing: %s", envNames(envs), strings.Join(units, " ")),
		fmt.Sprintf("written %s by %s", time.Now().UTC().Format(time.RFC3339), runtime.Version()),
	}
	if err := vectorfile.WriteFile(path, header, kept); err != nil {
		fmt.Fprintf(stderr, "ftzcheck: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "wrote %d cases (%s) to %s\n", len(kept), envNames(envs), path)
	return exitOK
}

// checkResult is the outcome of checking one vector file.
type checkResult struct {
	passed, failed int
	hardwareCases  int // cases also run on this hardware (per unit)
}

// checkCases evaluates every case with the reference and, where this CPU
// honours the environment, with every probe unit, and writes one line per
// mismatch to w.
func checkCases(cases []vectorfile.Case, w io.Writer) (checkResult, error) {
	var r checkResult
	bad := make([][]string, len(cases))
	for i, c := range cases {
		if ref := referenceResult(c); !same(ref, c.Result) {
			bad[i] = append(bad[i], fmt.Sprintf("reference %08x", ref))
		}
	}
	for _, u := range probe.Units() {
		res, ran, err := hardwareResults(u, cases)
		if err != nil {
			return r, err
		}
		for i := range cases {
			if !ran[i] {
				continue
			}
			r.hardwareCases++
			if !same(res[i], cases[i].Result) {
				bad[i] = append(bad[i], fmt.Sprintf("hardware %s %08x", u.Name, res[i]))
			}
		}
	}
	for i, c := range cases {
		if len(bad[i]) == 0 {
			r.passed++
			continue
		}
		r.failed++
		fmt.Fprintf(w, "line %d: %s: want %08x, got %s\n", c.Line, c, c.Result, strings.Join(bad[i], ", "))
	}
	return r, nil
}

func runCheck(path string, stdout, stderr io.Writer) int {
	cases, err := vectorfile.ReadFile(path)
	if err != nil {
		var pe *vectorfile.ParseError
		if errors.As(err, &pe) {
			fmt.Fprintf(stderr, "ftzcheck: malformed vector file: %v\n", err)
		} else {
			fmt.Fprintf(stderr, "ftzcheck: -check: %v\n", err)
		}
		return exitError
	}
	if len(cases) == 0 {
		// Nothing checked is not a pass: an empty or all-comment file is
		// most likely the wrong file, or a truncated one.
		fmt.Fprintf(stderr, "ftzcheck: %s holds no cases: nothing to check\n", path)
		return exitError
	}
	fmt.Fprintf(stdout, "%s: %d cases; reference: all; hardware (%s): %s\n",
		path, len(cases), cpuName(), orNone(envNames(probe.HardwareEnvs())))
	r, err := checkCases(cases, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "ftzcheck: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", r.passed, r.failed)
	if r.failed > 0 {
		return exitFailed
	}
	return exitOK
}

func envNames(envs []kernels.Env) string {
	s := make([]string, len(envs))
	for i, e := range envs {
		s[i] = e.String()
	}
	return strings.Join(s, " ")
}

func orNone(s string) string {
	if s == "" {
		return "none (no probes in this build)"
	}
	return s
}
