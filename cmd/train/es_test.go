package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed8b67a5e0/underflow/es"
)

// esTinyArgs is a small ES configuration for the subprocess tests.
func esTinyArgs(out string, workers string) []string {
	return []string{"-method", "es", "-arch", "784-16-16-10", "-train-n", "2000", "-test-n", "500",
		"-pop", "8", "-batch", "32", "-generations", "4000", "-eval-every", "1h", "-q",
		"-workers", workers, "-out", out}
}

func buildTrain(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "train")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func summarySHA(t *testing.T, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Sha   string `json:"params_sha256"`
		Steps int64  `json:"steps"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.Steps != 4000 {
		t.Fatalf("%s: %d steps in summary.json, want 4000", dir, s.Steps)
	}
	return s.Sha
}

// A run killed with SIGKILL mid-way and resumed ends with the same
// parameters as one that was never stopped (and the worker count, changed
// on resume, makes no difference either).
func TestESKilledAndResumedIsExact(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs cmd/train three times; not in -short")
	}
	bin := buildTrain(t)
	root := t.TempDir()

	whole := filepath.Join(root, "whole")
	if out, err := exec.Command(bin, esTinyArgs(whole, "1")...).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}

	killed := filepath.Join(root, "killed")
	cmd := exec.Command(bin, esTinyArgs(killed, "2")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ckpt := filepath.Join(killed, esCheckpoint)
	deadline := time.Now().Add(2 * time.Minute)
	for { // kill once a checkpoint past generation 100 is on disk
		if ck, err := es.LoadCheckpoint(ckpt); err == nil && ck.Gen >= 100 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run ended (%v) before it wrote a checkpoint", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no checkpoint after 2 minutes")
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	ck, err := es.LoadCheckpoint(ckpt)
	if err != nil {
		t.Fatalf("checkpoint left by the killed run: %v", err)
	}
	if ck.Gen >= 4000 {
		t.Fatalf("the run had finished (generation %d) before SIGKILL; nothing was tested", ck.Gen)
	}
	if _, err := os.Stat(filepath.Join(killed, "summary.json")); err == nil {
		t.Fatal("the killed run wrote summary.json: it was not killed mid-way")
	}
	t.Logf("killed at checkpoint generation %d of 4000", ck.Gen)

	if out, err := exec.Command(bin, "-resume", killed, "-workers", "1", "-q").CombinedOutput(); err != nil {
		t.Fatalf("resumed run: %v\n%s", err, out)
	}
	if a, b := summarySHA(t, whole), summarySHA(t, killed); a != b {
		t.Fatalf("killed and resumed run ends with params %s, the uninterrupted run %s", b, a)
	}
}

// The ES flags -l2, -noise-size, -fitness and -hold-norms: bad values are
// a usage error (exit 2) whose message names the flag.
func TestESBadFlags(t *testing.T) {
	cases := []struct {
		flag string
		args []string
	}{
		{"-l2", []string{"-l2", "-0.5"}},
		{"-l2", []string{"-l2", "NaN"}},
		{"-l2", []string{"-l2", "+Inf"}},
		{"-l2", []string{"-l2", "0.01", "-wd", "0.01"}},
		{"-noise-size", []string{"-noise-size", "0"}},
		{"-noise-size", []string{"-noise-size", "-5"}},
		{"-noise-size", []string{"-noise-size", "1000"}}, // fewer values than the 784-16-16-10 parameters
		{"-noise-size", []string{"-noise-size", "lots"}},
		{"-fitness", []string{"-fitness", "mse"}},
		{"-fitness", []string{"-fitness", ""}},
		{"-hold-norms", []string{"-hold-norms=maybe"}},
	}
	for _, c := range cases {
		args := append([]string{"-method", "es", "-arch", "784-16-16-10"}, c.args...)
		code, _, stderr := runTrain(t, context.Background(), args...)
		if code != 2 || !strings.Contains(stderr, c.flag) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message naming %s", args, code, stderr, c.flag)
		}
	}
	for _, name := range []string{"-l2=0.1", "-noise-size=100000", "-fitness=acc", "-hold-norms"} {
		args := []string{"-method", "backprop-ftz", name}
		code, _, stderr := runTrain(t, context.Background(), args...)
		flag, _, _ := strings.Cut(name, "=")
		if code != 2 || !strings.Contains(stderr, flag) || !strings.Contains(stderr, "es only") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message that %s is an es flag", args, code, stderr, flag)
		}
	}
}

// The flags reach es.Config and the objective; without them the settings
// are exactly the package defaults; -wd alone still sets ES's L2.
func TestESFlagsMapToSettings(t *testing.T) {
	parse := func(args ...string) *Options {
		t.Helper()
		o, err := parseOptions(append([]string{"-method", "es"}, args...), io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return o
	}
	cfg, batch, fitness := esSettings(parse())
	want := es.DefaultConfig()
	want.Workers = cfg.Workers
	want.LRFinal, want.DecayGens = esDefaultLRFinal, esDefaultGenerations
	if cfg != want || batch != esDefaultBatch || fitness != es.FitnessXent {
		t.Errorf("defaults: %+v batch %d fitness %s; want %+v batch %d xent", cfg, batch, fitness, want, esDefaultBatch)
	}
	if o := parse(); !o.HoldNorms || o.Generations != esDefaultGenerations {
		t.Errorf("defaults: hold norms %v, %d generations; want true, %d", o.HoldNorms, o.Generations, esDefaultGenerations)
	}
	if o := parse("-hold-norms=false", "-lr", "0.002", "-lr-final", "0.002"); o.HoldNorms || o.LRFinal != 0.002 {
		t.Errorf("-hold-norms=false -lr-final 0.002: hold norms %v, final lr %v", o.HoldNorms, o.LRFinal)
	}
	if o, err := parseOptions([]string{"-method", "backprop"}, io.Discard); err != nil || o.HoldNorms || o.Generations != 0 {
		t.Errorf("backprop: the ES defaults leaked (hold norms %v, generations %d, %v)", o.HoldNorms, o.Generations, err)
	}
	o := parse("-l2", "0.02", "-noise-size", "1048576", "-fitness", "acc", "-hold-norms")
	cfg, _, fitness = esSettings(o)
	if cfg.L2 != 0.02 || cfg.NoiseSize != 1048576 || fitness != es.FitnessAcc || !o.HoldNorms {
		t.Errorf("flags: L2 %v noise %d fitness %s hold %v; want 0.02 1048576 acc true", cfg.L2, cfg.NoiseSize, fitness, o.HoldNorms)
	}
	if cfg, _, _ := esSettings(parse("-l2", "0")); cfg.L2 != 0 {
		t.Errorf("-l2 0: L2 %v", cfg.L2)
	}
	if cfg, _, _ := esSettings(parse("-wd", "0.03")); cfg.L2 != 0.03 {
		t.Errorf("-wd 0.03: L2 %v, want 0.03", cfg.L2)
	}
}

// A run's ES settings are in summary.json's config and its checkpoint; a
// resume whose settings differ from the checkpoint's is refused, and a run
// folder written before these flags existed resumes with their defaults.
func TestESSettingsInConfigAndCheckpoint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	args := []string{"-method", "es", "-arch", "784-16-16-10", "-train-n", "500", "-test-n", "100",
		"-pop", "4", "-batch", "16", "-generations", "3", "-eval-every", "1h", "-q", "-workers", "1", "-out", dir,
		"-l2", "0.02", "-noise-size", "65536", "-fitness", "acc", "-hold-norms"}
	if code, _, stderr := runTrain(t, context.Background(), args...); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Config struct {
			L2        float32
			NoiseSize int
			Fitness   string `json:"fitness"`
			HoldNorms bool   `json:"hold_norms"`
		} `json:"config"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if c := s.Config; c.L2 != 0.02 || c.NoiseSize != 65536 || c.Fitness != "acc" || !c.HoldNorms {
		t.Errorf("summary.json config %+v; want L2 0.02, NoiseSize 65536, fitness acc, hold_norms true", c)
	}

	// The settings cannot change on -resume ...
	for _, a := range [][]string{{"-l2", "0.03"}, {"-noise-size", "131072"}, {"-fitness", "xent"}, {"-hold-norms=false"}} {
		code, _, stderr := runTrain(t, context.Background(), append([]string{"-resume", dir, "-q"}, a...)...)
		if code != 2 || !strings.Contains(stderr, "cannot change on -resume") {
			t.Errorf("-resume with %v: exit %d, stderr %q; want 2", a, code, stderr)
		}
	}
	// ... and a checkpoint made under other settings is refused.
	optsPath := filepath.Join(dir, "options.json")
	raw, err = os.ReadFile(optsPath)
	if err != nil {
		t.Fatal(err)
	}
	writeOpts := func(edit func(map[string]any)) {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, _ := json.Marshal(m)
		if err := os.WriteFile(optsPath, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		key  string
		val  any
		what string
	}{
		{"hold_norms", false, "hold_norms"},
		{"fitness", "xent", "fitness"},
		{"l2", 0.03, "L2:0.03"},
		{"noise_size", 131072, "NoiseSize:131072"},
	} {
		writeOpts(func(m map[string]any) {
			if _, ok := m[c.key]; !ok {
				t.Fatalf("options.json lacks %s", c.key)
			}
			m[c.key] = c.val
		})
		code, _, stderr := runTrain(t, context.Background(), "-resume", dir, "-q")
		if code == 0 || !strings.Contains(stderr, "different configuration") || !strings.Contains(stderr, c.what) {
			t.Errorf("resume with %s %v: exit %d, stderr %q; want a refusal naming %s", c.key, c.val, code, stderr, c.what)
		}
	}

	// options.json from before the flags: they take their defaults.
	writeOpts(func(m map[string]any) {
		for _, k := range []string{"l2", "noise_size", "fitness", "hold_norms"} {
			delete(m, k)
		}
	})
	o, err := parseOptions([]string{"-resume", dir}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, fitness := esSettings(o)
	if d := es.DefaultConfig(); cfg.L2 != d.L2 || cfg.NoiseSize != d.NoiseSize || fitness != es.FitnessXent || o.HoldNorms {
		t.Errorf("old options.json: L2 %v noise %d fitness %s hold %v; want the defaults", cfg.L2, cfg.NoiseSize, fitness, o.HoldNorms)
	}
}

// -perturb and -rank: bad values exit 2 naming the flag; they are ES flags;
// they reach es.Config.Rank, summary.json's config and the checkpoint, and
// a resume under another perturbation is refused.
func TestESPerturbFlags(t *testing.T) {
	for _, c := range []struct {
		flag string
		args []string
	}{
		{"-perturb", []string{"-perturb", "bogus"}},
		{"-perturb", []string{"-perturb", ""}},
		{"-rank", []string{"-perturb", "lowrank", "-rank", "0"}},
		{"-rank", []string{"-perturb", "lowrank", "-rank", "-2"}},
		{"-rank", []string{"-perturb", "lowrank", "-rank", "65"}},
		{"-rank", []string{"-perturb", "lowrank", "-rank", "two"}},
		{"-rank", []string{"-rank", "2"}}, // full rank
		{"-perturb", []string{"-perturb", "lowrank", "-guide", "0.1"}},
	} {
		args := append([]string{"-method", "es", "-arch", "784-16-16-10"}, c.args...)
		code, _, stderr := runTrain(t, context.Background(), args...)
		if code != 2 || !strings.Contains(stderr, c.flag) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message naming %s", args, code, stderr, c.flag)
		}
	}
	for _, args := range [][]string{{"-perturb", "lowrank"}, {"-rank", "2"}} {
		args = append([]string{"-method", "backprop-ftz"}, args...)
		code, _, stderr := runTrain(t, context.Background(), args...)
		if code != 2 || !strings.Contains(stderr, args[2]) || !strings.Contains(stderr, "es only") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message that %s is an es flag", args, code, stderr, args[2])
		}
	}
	rank := func(args ...string) int {
		t.Helper()
		o, err := parseOptions(append([]string{"-method", "es"}, args...), io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		cfg, _, _ := esSettings(o)
		return cfg.Rank
	}
	if r := rank(); r != 0 {
		t.Errorf("default perturbations: rank %d, want 0 (full)", r)
	}
	if r := rank("-perturb", "full"); r != 0 {
		t.Errorf("-perturb full: rank %d, want 0", r)
	}
	if r := rank("-perturb", "lowrank"); r != esDefaultRank {
		t.Errorf("-perturb lowrank: rank %d, want %d", r, esDefaultRank)
	}
	if r := rank("-perturb", "lowrank", "-rank", "4"); r != 4 {
		t.Errorf("-perturb lowrank -rank 4: rank %d", r)
	}

	dir := filepath.Join(t.TempDir(), "run")
	args := []string{"-method", "es", "-arch", "784-16-16-10", "-train-n", "500", "-test-n", "100",
		"-pop", "4", "-batch", "16", "-generations", "3", "-eval-every", "1h", "-q", "-workers", "2", "-out", dir,
		"-noise-size", "65536", "-perturb", "lowrank", "-rank", "2"}
	if code, _, stderr := runTrain(t, context.Background(), args...); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Config struct {
			Rank    int
			Perturb string `json:"perturb"`
		} `json:"config"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.Config.Rank != 2 || s.Config.Perturb != "lowrank" {
		t.Errorf("summary.json config %+v; want Rank 2, perturb lowrank", s.Config)
	}
	for _, a := range [][]string{{"-rank", "3"}, {"-perturb", "full"}} {
		code, _, stderr := runTrain(t, context.Background(), append([]string{"-resume", dir, "-q"}, a...)...)
		if code != 2 || !strings.Contains(stderr, "cannot change on -resume") {
			t.Errorf("-resume with %v: exit %d, stderr %q; want 2", a, code, stderr)
		}
	}
	optsPath := filepath.Join(dir, "options.json")
	orig, err := os.ReadFile(optsPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		edit map[string]any
		what string
	}{
		{map[string]any{"rank": 3}, "Rank:3"},
		{map[string]any{"perturb": "full", "rank": 0}, "Rank:0"},
	} {
		var m map[string]any
		if err := json.Unmarshal(orig, &m); err != nil {
			t.Fatal(err)
		}
		for k, v := range c.edit {
			if _, ok := m[k]; !ok {
				t.Fatalf("options.json lacks %s", k)
			}
			m[k] = v
		}
		b, _ := json.Marshal(m)
		if err := os.WriteFile(optsPath, b, 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runTrain(t, context.Background(), "-resume", dir, "-q")
		if code == 0 || !strings.Contains(stderr, "different configuration") || !strings.Contains(stderr, c.what) {
			t.Errorf("resume with %v: exit %d, stderr %q; want a refusal naming %s", c.edit, code, stderr, c.what)
		}
	}
	// The untouched options resume.
	if err := os.WriteFile(optsPath, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runTrain(t, context.Background(), "-resume", dir, "-q"); code != 0 {
		t.Errorf("resume of the low-rank run: exit %d\n%s", code, stderr)
	}
}
