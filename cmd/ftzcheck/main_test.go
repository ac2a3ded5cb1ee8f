package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/seed8b67a5e0/underflow/cmd/ftzcheck/internal/vectorfile"
	"github.com/seed8b67a5e0/underflow/kernels"
	"github.com/seed8b67a5e0/underflow/kernels/probe"
)

func runArgs(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestCheckTestdata runs -check on the committed vector files, measured on
// real hardware (amd64-zen3.vec: an AMD EPYC Zen 3, four x86 environments;
// arm64-qemu.vec: qemu-aarch64 7.2, IEEE and ARM_FZ). Every case must agree
// with the reference, and with this CPU where it honours the environment.
func TestCheckTestdata(t *testing.T) {
	files, err := filepath.Glob("testdata/*.vec")
	if err != nil || len(files) < 2 {
		t.Fatalf("want the committed vector files in testdata, got %v (%v)", files, err)
	}
	for _, f := range files {
		cases, err := vectorfile.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		envs := map[kernels.Env]int{}
		for _, c := range cases {
			envs[c.Env]++
		}
		var out bytes.Buffer
		r, err := checkCases(cases, &out)
		if err != nil {
			t.Fatal(err)
		}
		if r.failed != 0 || r.passed != len(cases) || len(cases) < 10000 {
			t.Errorf("%s: %d passed, %d failed of %d cases:\n%s", f, r.passed, r.failed, len(cases), out.String())
		}
		hw := 0
		for e, n := range envs {
			if probe.HardwareHonours(e) {
				hw += n * len(probe.Units())
			}
		}
		// Count what ran on the hardware: all units have every op here
		// except where a CPU lacks FMA, so allow fewer but not none.
		if hw > 0 && r.hardwareCases == 0 {
			t.Errorf("%s: this CPU honours some of its environments, but no case ran on the hardware", f)
		}
		t.Logf("%s: %d cases %v, %d hardware runs", f, len(cases), envs, r.hardwareCases)
	}
}

func TestCheckCommand(t *testing.T) {
	code, out, errOut := runArgs("-check", "testdata/arm64-qemu.vec")
	if code != exitOK || !regexp.MustCompile(`^\d+ passed, 0 failed$`).MatchString(lastLine(out)) {
		t.Errorf("exit %d, last line %q, stderr %q", code, lastLine(out), errOut)
	}
}

// TestCheckReportsFailures: a wrong RESULT is named with its line, counted,
// and makes the exit status 1.
func TestCheckReportsFailures(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.vec")
	content := "# two good, one wrong\n" +
		"FTZ mul 3f7fffff 00800000 - 00000000\n" +
		"\n" +
		"IEEE mul 3f7fffff 00800000 - 00000000 # wrong: IEEE rounds up to 00800000\n" +
		"ARM_FZ mul 3f000001 00fffffe - 00000000\n" +
		"FTZ_DAZ fma 7fc00000 3f800000 3f800000 7fc00001 # NaN by class\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runArgs("-check", path)
	if code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	if !strings.Contains(out, "line 4: IEEE mul 3f7fffff 00800000 - 00000000: want 00000000, got reference 00800000") {
		t.Errorf("mismatch not reported with its line:\n%s", out)
	}
	if lastLine(out) != "3 passed, 1 failed" {
		t.Errorf("last line %q, want %q", lastLine(out), "3 passed, 1 failed")
	}
}

func TestCheckMalformed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "malformed.vec")
	if err := os.WriteFile(path, []byte("IEEE add 3f800000 3f800000 - 40000000\nIEEE add 3f800000 zz - 40000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runArgs("-check", path)
	if code != exitError || !strings.Contains(errOut, "malformed.vec:2:") {
		t.Errorf("exit %d, stderr %q; want exit %d naming line 2", code, errOut, exitError)
	}
	code, _, errOut = runArgs("-check", filepath.Join(t.TempDir(), "missing.vec"))
	if code != exitError || errOut == "" {
		t.Errorf("missing file: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := runArgs("extra"); code != exitError {
		t.Errorf("stray argument: exit %d, want %d", code, exitError)
	}
}

// TestEmitThenCheck measures a small suite on this hardware and checks it.
func TestEmitThenCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "here.vec")
	code, out, errOut := runArgs("-emit", path, "-n", "300")
	if len(probe.HardwareEnvs()) == 0 {
		if code != exitError {
			t.Errorf("no probes: -emit exit %d, want %d", code, exitError)
		}
		return
	}
	if code != exitOK {
		t.Fatalf("-emit: exit %d\n%s%s", code, out, errOut)
	}
	cases, err := vectorfile.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(probe.HardwareEnvs()) * len(probe.Ops) * 300; len(cases) < want {
		t.Errorf("emitted %d cases, want at least %d", len(cases), want)
	}
	code, out, _ = runArgs("-check", path)
	if code != exitOK || lastLine(out) != fmt.Sprintf("%d passed, 0 failed", len(cases)) {
		t.Errorf("-check of the emitted file: exit %d, last line %q", code, lastLine(out))
	}
}

// TestReport runs the no-argument report on a small suite.
func TestReport(t *testing.T) {
	code, out, errOut := runArgs("-n", "200", "-nobench")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"CPU:", "Honours:", "Self-test:"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if len(kernels.AvailableBackends()) > 1 && !strings.Contains(out, "Self-test:    passed") {
		t.Errorf("report lacks the self-test's pass:\n%s", out)
	}
	if len(probe.HardwareEnvs()) == 0 {
		return
	}
	for _, want := range []string{"mismatches", ", 0 mismatches", "tininess detected"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// Checking nothing is not success: a file with no cases (empty, or only
// comments) exits 2 and says so.
func TestCheckEmptyFile(t *testing.T) {
	for name, content := range map[string]string{"empty.vec": "", "comments.vec": "# only a header\n\n# and more\n"} {
		path := filepath.Join(t.TempDir(), name)
		os.WriteFile(path, []byte(content), 0o644)
		code, out, errOut := runArgs("-check", path)
		if code != exitError || !strings.Contains(errOut, "no cases") || strings.Contains(out, "passed") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d and \"no cases\"", name, code, out, errOut, exitError)
		}
	}
}

// A folder given to -check is an I/O error, not a malformed file; a huge
// malformed line is echoed cut short.
func TestCheckIOErrorsAndLongLines(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runArgs("-check", dir)
	if code != exitError || strings.Contains(errOut, "malformed") || !strings.Contains(errOut, "folder") {
		t.Errorf("folder: exit %d, stderr %q", code, errOut)
	}
	path := filepath.Join(dir, "long.vec")
	os.WriteFile(path, []byte("IEEE add "+strings.Repeat("7", 1<<20)+" 3f800000 - 40000000\n"), 0o644)
	code, _, errOut = runArgs("-check", path)
	if code != exitError || !strings.Contains(errOut, "long.vec:1:") || len(errOut) > 300 {
		t.Errorf("long malformed line: exit %d, %d bytes on stderr: %.300s", code, len(errOut), errOut)
	}
}

// -emit's errors name the path the user gave, never a temporary file, and
// a missing folder is found before the measurement.
func TestEmitErrorNamesPath(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such", "out.vec")
	code, _, errOut := runArgs("-emit", missing, "-n", "10")
	if code != exitError || !strings.Contains(errOut, missing) || strings.Contains(errOut, ".tmp") {
		t.Errorf("-emit into a missing folder: exit %d, stderr %q", code, errOut)
	}
	if len(probe.HardwareEnvs()) == 0 {
		return
	}
	// A folder in the way of the file: the rename fails after measuring.
	target := filepath.Join(dir, "taken.vec")
	os.Mkdir(target, 0o755)
	os.WriteFile(filepath.Join(target, "x"), nil, 0o644)
	code, _, errOut = runArgs("-emit", target, "-n", "10")
	if code != exitError || !strings.Contains(errOut, target) || strings.Contains(errOut, ".tmp") {
		t.Errorf("-emit onto a folder: exit %d, stderr %q", code, errOut)
	}
}
