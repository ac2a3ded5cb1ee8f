package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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
