package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/safetensors"
	"github.com/seed8b67a5e0/underflow/kernels"
)

// TestMain lets the tests run the command itself as a subprocess (for the
// Ctrl-C test): UNDERFLOW_TRAIN_MAIN=1 makes the test binary be cmd/train.
func TestMain(m *testing.M) {
	if os.Getenv("UNDERFLOW_TRAIN_MAIN") == "1" {
		os.Args = append([]string{"train"}, strings.Fields(os.Getenv("UNDERFLOW_TRAIN_ARGS"))...)
		main()
		return
	}
	os.Exit(m.Run())
}

// smallRun is a backprop-ftz run small enough for the purego backend and
// qemu: a 784-16-16-10 network, 400 real MNIST images, 40 steps, with
// augmentation on so every part of the trainer is in the hash.
var smallRun = []string{"-arch", "784-16-16-10", "-train-n", "400", "-test-n", "200", "-epochs", "2", "-batch", "20",
	"-shift", "1", "-surrogate", "jump", "-eval-every", "1h", "-q"}

// goldenSmallRunSHA is params_sha256 of smallRun with seed 1, produced by a
// real run (avx2). Every backend must give the same bits: `make test` runs
// this test under avx2, avx512 where present, purego, and arm64 NEON under
// qemu.
const goldenSmallRunSHA = "1c852e7f419a5442bb93224114e1e11b6360d5cb69d7e2878f48c5a8c64c7ecb"

type summaryFile struct {
	Method        string  `json:"method"`
	Recipe        string  `json:"recipe"`
	Backend       string  `json:"backend"`
	Seed          uint64  `json:"seed"`
	Steps         int64   `json:"steps"`
	WallSeconds   float64 `json:"wall_seconds"`
	TrainAccuracy float64 `json:"train_accuracy"`
	TestAccuracy  float64 `json:"test_accuracy"`
	ValAccuracy   float64 `json:"val_accuracy"`
	ValExamples   int     `json:"val_examples"`
	TrainExamples int     `json:"train_examples"`
	ParamsSHA256  string  `json:"params_sha256"`
	Interrupted   bool    `json:"interrupted"`
}

func runTrain(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = trainMain(ctx, args, &o, &e)
	return code, o.String(), e.String()
}

func readSummary(t *testing.T, dir string) summaryFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s summaryFile
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSmallRunGoldenHash(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runTrain(t, context.Background(), append(smallRun, "-out", dir, "-workers", "2")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	s := readSummary(t, dir)
	t.Logf("backend %s: params_sha256 %s, test acc %.3f, %d steps", s.Backend, s.ParamsSHA256, s.TestAccuracy, s.Steps)
	if s.Backend != kernels.Backend() || s.Method != "backprop-ftz" || s.Recipe != "openai2017" || s.Steps != 40 || s.Seed != 1 {
		t.Errorf("summary %+v", s)
	}
	if s.ParamsSHA256 != goldenSmallRunSHA {
		t.Errorf("backend %s: params_sha256 %s, golden %s: this backend does not reproduce the run bit for bit", s.Backend, s.ParamsSHA256, goldenSmallRunSHA)
	}
	if !strings.Contains(stdout, "96.7%") || !strings.Contains(stdout, "this run: backprop-ftz") {
		t.Errorf("report lacks the article's table:\n%s", stdout)
	}
	for _, f := range []string{"metrics.jsonl", "model.safetensors", "curve.svg", "checkpoint.safetensors", "options.json"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("run folder lacks %s: %v", f, err)
		}
	}
	// The saved model is the trained parameters.
	_, p, md, err := safetensors.LoadParams(filepath.Join(dir, "model.safetensors"))
	if err != nil || fpnet.ParamsSHA256(p) != s.ParamsSHA256 || md["recipe"] != "openai2017" {
		t.Errorf("model file: %v, hash %s, metadata %v", err, fpnet.ParamsSHA256(p), md)
	}
	// One worker: the same bits.
	dir1 := t.TempDir()
	if code, _, e := runTrain(t, context.Background(), append(smallRun, "-out", dir1, "-workers", "1")...); code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	if s1 := readSummary(t, dir1); s1.ParamsSHA256 != s.ParamsSHA256 {
		t.Errorf("1 worker gives %s, 2 workers %s", s1.ParamsSHA256, s.ParamsSHA256)
	}
}

// smallRunAll is smallRun with every option the default does not use on:
// smooth distortions (rotation, scaling, elastic field, pixel noise),
// dropout, label smoothing, the parameter average, and a validation split.
var smallRunAll = append(append([]string(nil), smallRun...), "-rotate", "10", "-scale", "0.1", "-elastic", "1.5", "-elastic-grid", "4",
	"-noise", "0.05", "-dropout", "0.2", "-label-smoothing", "0.1", "-ema", "0.9", "-val", "100")

// goldenSmallRunAllSHA is params_sha256 of smallRunAll with seed 1 (avx2),
// checked on every backend like goldenSmallRunSHA.
const goldenSmallRunAllSHA = "6703360843983398bd35b3f622e7730303b9cc021a1cdcff6faaf3951dfae849"

func TestSmallRunAllOptionsGoldenHash(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runTrain(t, context.Background(), append(smallRunAll, "-out", dir, "-workers", "2")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	s := readSummary(t, dir)
	t.Logf("backend %s: params_sha256 %s, test acc %.3f, val acc %.3f, %d steps", s.Backend, s.ParamsSHA256, s.TestAccuracy, s.ValAccuracy, s.Steps)
	if s.ParamsSHA256 != goldenSmallRunAllSHA {
		t.Errorf("backend %s: params_sha256 %s, golden %s: this backend does not reproduce the run bit for bit", s.Backend, s.ParamsSHA256, goldenSmallRunAllSHA)
	}
	// The validation images are the last 100 of the training file, held
	// out: 400 train, 100 validation, and the periodic evaluations and the
	// summary score them.
	if s.Steps != 40 || s.ValExamples != 100 || s.TrainExamples != 400 || !(s.ValAccuracy > 0) {
		t.Errorf("summary: %d steps, %d train / %d validation examples, val acc %v", s.Steps, s.TrainExamples, s.ValExamples, s.ValAccuracy)
	}
	m, _ := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if !bytes.Contains(m, []byte(`"val_acc"`)) || bytes.Contains(m, []byte(`"kind":"eval","step":40,"test_acc"`)) {
		t.Errorf("metrics.jsonl: periodic evaluations should score the validation set:\n%s", m)
	}
	if !strings.Contains(stdout, "validation (the last 100 training images, held out)") {
		t.Errorf("report lacks the validation line:\n%s", stdout)
	}
	// The saved model is the average, and one worker gives the same bits.
	_, p, _, err := safetensors.LoadParams(filepath.Join(dir, "model.safetensors"))
	if err != nil || fpnet.ParamsSHA256(p) != s.ParamsSHA256 {
		t.Errorf("model file: %v", err)
	}
	dir1 := t.TempDir()
	if code, _, e := runTrain(t, context.Background(), append(smallRunAll, "-out", dir1, "-workers", "1")...); code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	if s1 := readSummary(t, dir1); s1.ParamsSHA256 != s.ParamsSHA256 {
		t.Errorf("1 worker gives %s, 2 workers %s", s1.ParamsSHA256, s.ParamsSHA256)
	}
	// Interrupted and resumed: the same bits (the average is in the
	// checkpoint).
	dirR := t.TempDir()
	o, err := parseOptions(append(smallRunAll, "-out", dirR), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	o.stopAfter = 17
	var out bytes.Buffer
	if err := run(context.Background(), o, &out, &out); err != nil {
		t.Fatal(err)
	}
	if code, _, e := runTrain(t, context.Background(), "-resume", dirR, "-q"); code != 0 {
		t.Fatalf("resume: exit %d: %s", code, e)
	}
	if sr := readSummary(t, dirR); sr.ParamsSHA256 != s.ParamsSHA256 || sr.Steps != 40 {
		t.Errorf("resumed run: %d steps, %s; straight run %s", sr.Steps, sr.ParamsSHA256, s.ParamsSHA256)
	}
	// -val defines the run: it cannot change on resume.
	if code, _, e := runTrain(t, context.Background(), "-resume", dirR, "-val", "50", "-q"); code != 2 || !strings.Contains(e, "-val") {
		t.Errorf("-resume with another -val: exit %d, %s", code, e)
	}
}

// An interrupted run resumed from its checkpoint ends with the same bits
// as one that ran straight through.
func TestResumeIsBitExact(t *testing.T) {
	straight := t.TempDir()
	if code, _, e := runTrain(t, context.Background(), append(smallRun, "-out", straight)...); code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	want := readSummary(t, straight).ParamsSHA256

	dir := t.TempDir()
	o, err := parseOptions(append(smallRun, "-out", dir), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	o.stopAfter = 13 // as if Ctrl-C after step 13 (not an epoch boundary)
	var out bytes.Buffer
	if err := run(context.Background(), o, &out, &out); err != nil {
		t.Fatal(err)
	}
	s := readSummary(t, dir)
	if !s.Interrupted || s.Steps != 13 {
		t.Fatalf("interrupted run: %+v", s)
	}
	code, stdout, stderr := runTrain(t, context.Background(), "-resume", dir, "-q")
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s%s", code, stdout, stderr)
	}
	s = readSummary(t, dir)
	if s.Steps != 40 || s.Interrupted || s.ParamsSHA256 != want {
		t.Errorf("resumed run: %d steps, hash %s; straight run %s", s.Steps, s.ParamsSHA256, want)
	}
	// A damaged checkpoint is refused, with the file named.
	ck := filepath.Join(dir, "checkpoint.safetensors")
	b, _ := os.ReadFile(ck)
	b[len(b)-9] ^= 0x10
	os.WriteFile(ck, b, 0o644)
	code, _, stderr = runTrain(t, context.Background(), "-resume", dir, "-q")
	if code != 1 || !strings.Contains(stderr, "checksum mismatch") || !strings.Contains(stderr, "checkpoint.safetensors") {
		t.Errorf("damaged checkpoint: exit %d, %s", code, stderr)
	}
	os.WriteFile(ck, b[:100], 0o644)
	code, _, stderr = runTrain(t, context.Background(), "-resume", dir, "-q")
	if code != 1 || !strings.Contains(stderr, "checkpoint") {
		t.Errorf("truncated checkpoint: exit %d, %s", code, stderr)
	}
}

func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	cases := [][]string{
		{"-method", "sgd"},
		{"-recipe", "fp16"},
		{"-arch", "784-x-10"},
		{"-batch", "-3"},
		{"-lr", "7"},
		{"-workers", "0"},
		{"-budget", "banana"},
		{"-surrogate", "relu"},
		{"-shift", "30"},
		{"-rotate", "90"},
		{"-elastic", "2", "-elastic-grid", "3"},
		{"-ema", "1"},
		{"-dropout", "0.95"},
		{"-init-scale", "1,2"},
		{"-init-scale", "0,9,0"},
		{"-init-scale", "a,b,c"},
		{"-label-smoothing", "-0.5"},
		{"-val", "-1"},
		{"-method", "es", "-elastic", "1"},
		{"-nosuchflag"},
		{"extra-argument"},
		{"-resume", filepath.Join(dir, "nothing-here")},
		{"-resume", dir, "-recipe", "ieee"},
	}
	os.WriteFile(filepath.Join(dir, "options.json"), []byte(`{"method":"backprop-ftz","recipe":"openai2017","arch":"784-512-512-10","seed":1,"workers":1,"eval_every":1000000000}`), 0o644)
	for _, args := range cases {
		code, _, stderr := runTrain(t, context.Background(), args...)
		if code != 2 || !strings.Contains(stderr, "train:") && !strings.Contains(stderr, "flag") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
}

func TestBadInputs(t *testing.T) {
	// A model with a NaN, with a valid checksum, as -init.
	dir := t.TempDir()
	arch, _ := fpnet.ParseArch("784-16-16-10")
	p := fpnet.InitParams(arch, 1)
	model := filepath.Join(dir, "m.safetensors")
	if err := safetensors.SaveParams(model, arch, "openai2017", p, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(model)
	b[len(b)-4], b[len(b)-3], b[len(b)-2], b[len(b)-1] = 0, 0, 0xc0, 0x7f // a NaN: checksum now wrong
	os.WriteFile(model, b, 0o644)
	code, _, stderr := runTrain(t, context.Background(), append(smallRun, "-init", model, "-out", dir)...)
	if code != 1 || !strings.Contains(stderr, "-init") {
		t.Errorf("-init with damaged model: exit %d, %s", code, stderr)
	}
	// Wrong architecture.
	safetensors.SaveParams(model, arch, "openai2017", p, nil)
	code, _, stderr = runTrain(t, context.Background(), "-arch", "784-8-10", "-init", model, "-q", "-out", dir)
	if code != 1 || !strings.Contains(stderr, "architecture") {
		t.Errorf("-init with another architecture: exit %d, %s", code, stderr)
	}
	// A corrupt IDX folder.
	data := t.TempDir()
	os.WriteFile(filepath.Join(data, "train-images-idx3-ubyte"), []byte{0, 0, 8, 1, 0, 0, 0, 1}, 0o644)
	for _, f := range []string{"train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"} {
		os.WriteFile(filepath.Join(data, f), []byte{0, 0, 8, 1, 0, 0, 0, 0}, 0o644)
	}
	code, _, stderr = runTrain(t, context.Background(), append(smallRun, "-data", data, "-out", dir)...)
	if code != 1 || !strings.Contains(stderr, "train-images-idx3-ubyte") {
		t.Errorf("corrupt IDX: exit %d, %s", code, stderr)
	}
}

// Ctrl-C (SIGINT) on the real command: a checkpoint, a summary, exit 0.
func TestInterruptWritesCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the command as a subprocess; not under -short (qemu)")
	}
	dir := t.TempDir()
	args := strings.Join(append([]string{"-arch", "784-64-64-10", "-epochs", "50", "-batch", "50", "-train-n", "5000", "-test-n", "500", "-q", "-out"}, dir), " ")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "UNDERFLOW_TRAIN_MAIN=1", "UNDERFLOW_TRAIN_ARGS="+args)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
		if bytes.Contains(b, []byte(`"kind":"step"`)) {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no training step within 60 s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGINT: %v\n%s", err, out.String())
	}
	s := readSummary(t, dir)
	if !s.Interrupted || s.Steps == 0 || s.Steps >= 5000 {
		t.Errorf("summary after SIGINT: %+v", s)
	}
	if _, err := safetensors.LoadCheckpoint(filepath.Join(dir, "checkpoint.safetensors")); err != nil {
		t.Errorf("checkpoint after SIGINT: %v", err)
	}
	if !strings.Contains(out.String(), "interrupted") {
		t.Errorf("no word of the interruption:\n%s", out.String())
	}
}

// -init starts from a saved model: with no time to train, the result is
// that model, bit for bit.
func TestInitFromModel(t *testing.T) {
	dir := t.TempDir()
	arch, _ := fpnet.ParseArch("784-16-16-10")
	p := fpnet.InitParams(arch, 77)
	p[5] = 0.25
	model := filepath.Join(dir, "start.safetensors")
	if err := safetensors.SaveParams(model, arch, "openai2017", p, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	code, _, stderr := runTrain(t, context.Background(), append(smallRun, "-init", model, "-budget", "1ns", "-out", out)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if s := readSummary(t, out); s.Steps != 0 || s.ParamsSHA256 != fpnet.ParamsSHA256(p) {
		t.Errorf("-init with no budget to train: %d steps, hash %s; want 0 and the model's %s", s.Steps, s.ParamsSHA256, fpnet.ParamsSHA256(p))
	}
}

// -init-scale multiplies each layer's initial weights by its power of two,
// exactly: with no time to train, the result is the scaled draw.
func TestInitScale(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runTrain(t, context.Background(), append(smallRun, "-init-scale", "1,-2,0", "-budget", "1ns", "-out", dir)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	arch, _ := fpnet.ParseArch("784-16-16-10")
	want := fpnet.InitParams(arch, 1)
	for l, ly := range arch.LayerViews() {
		w := ly.W(want)
		for i := range w {
			w[i] *= []float32{2, 0.25, 1}[l]
		}
	}
	if s := readSummary(t, dir); s.Steps != 0 || s.ParamsSHA256 != fpnet.ParamsSHA256(want) {
		t.Errorf("-init-scale 1,-2,0 with no budget to train: %d steps, hash %s; want 0 and %s", s.Steps, s.ParamsSHA256, fpnet.ParamsSHA256(want))
	}
}
