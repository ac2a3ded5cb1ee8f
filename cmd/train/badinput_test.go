package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"io/fs"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/seed8b67a5e0/underflow/es"
	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/safetensors"
)

// snapshot is every file under dir with a hash of its content and its
// modification time: what a failing command must leave as it found it.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		sum := ""
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			sum = hex.EncodeToString(h[:8])
		}
		files[p] = sum + " " + info.ModTime().String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func sameSnapshot(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, v := range after {
		if before[p] != v {
			t.Errorf("%s: %s was created or changed", what, p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s: %s was removed", what, p)
		}
	}
}

// finishedRun makes a run folder holding a finished (zero-step) run.
func finishedRun(t *testing.T, dir string) {
	t.Helper()
	if code, _, stderr := runTrain(t, context.Background(), append(smallRun, "-budget", "1ns", "-out", dir)...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

// Every usage error exits 2 with a message naming the flag and quoting the
// value given, before anything on disk is created or changed: not in the
// working folder (where runs/ would go), not in the folders the flags name.
func TestUsageErrorsTouchNothing(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	held := filepath.Join(work, "held")
	finishedRun(t, held)
	dead := filepath.Join(work, "dead") // a run that died before its first checkpoint
	finishedRun(t, dead)
	os.Remove(filepath.Join(dead, backpropCheckpoint))
	os.Remove(filepath.Join(dead, "summary.json"))
	os.Remove(filepath.Join(dead, "model.safetensors"))
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	hugeArch := "784-" + strings.Repeat("65536-", 100) + "10"
	esArgs := []string{"-method", "es", "-arch", "784-16-16-10"}
	cases := []struct {
		args []string
		want []string // substrings of the message
	}{
		// NaN and Inf, never a silent default.
		{[]string{"-lr", "NaN"}, []string{"-lr NaN", "not a number"}},
		{[]string{"-tau", "nan"}, []string{"-tau nan"}},
		{[]string{"-wd", "NaN"}, []string{"-wd NaN"}},
		{[]string{"-lr-final", "NaN"}, []string{"-lr-final NaN"}},
		{append(esArgs, "-sigma", "NaN"), []string{"-sigma NaN"}},
		{append(esArgs, "-lr-final", "NaN"), []string{"-lr-final NaN"}},
		{append(esArgs, "-l2", "NaN"), []string{"-l2 NaN"}},
		{append(esArgs, "-guide", "NaN"), []string{"-guide NaN"}},
		{[]string{"-tau", "+Inf"}, []string{"-tau +Inf", "float32's range"}},
		{append(esArgs, "-lr-final", "Inf"), []string{"-lr-final Inf"}},
		// The user's value, not what float32 makes of it.
		{[]string{"-lr", "1e-50"}, []string{"-lr 1e-50", "smallest normal"}},
		{append(esArgs, "-sigma", "1e300"), []string{"-sigma 1e300", "float32's range"}},
		{append(esArgs, "-sigma", "1e400"), []string{`"1e400"`, "-sigma", "out of range"}},
		{[]string{"-lr", "7.5"}, []string{"-lr 7.5"}},
		{[]string{"-batch", "-0x10"}, []string{"-batch -0x10"}},
		{[]string{"--lr=0.50e1"}, []string{"-lr 0.50e1"}},
		{[]string{"-hold-norms", "-lr", "1e-39"}, []string{"-lr 1e-39"}},
		// Flags of the other method, refused both ways, naming both.
		{append(esArgs, "-epochs", "3"), []string{"-epochs", "backprop", "not es"}},
		{append(esArgs, "-shift", "1"), []string{"-shift", "not es"}},
		{append(esArgs, "-tau", "0.2"), []string{"-tau", "backprop-ftz only", "not es"}},
		{append(esArgs, "-surrogate", "mask"), []string{"-surrogate", "not es"}},
		{[]string{"-method", "backprop", "-tau", "0.2"}, []string{"-tau", "backprop-ftz only", "not backprop"}},
		{[]string{"-pop", "10"}, []string{"-pop", "es only", "not backprop-ftz"}},
		{[]string{"-sigma", "0.1"}, []string{"-sigma", "es only"}},
		{[]string{"-generations", "5"}, []string{"-generations", "es only"}},
		{[]string{"-l2", "0.1"}, []string{"-l2", "es only"}},
		{[]string{"-serve", "127.0.0.1:0"}, []string{"-serve", "es only"}},
		{[]string{"-task-pairs", "2"}, []string{"-task-pairs", "es only"}},
		// The cluster's flags need the cluster; its checks come first.
		{append(esArgs, "-task-timeout", "5s"), []string{"-task-timeout", "-serve or -nats"}},
		{append(esArgs, "-nats-token-file", "tok"), []string{"-nats-token-file", "-serve or -nats"}},
		{append(esArgs, "-serve", "0.0.0.0:0"), []string{"-serve 0.0.0.0:0", "beyond loopback"}},
		{append(esArgs, "-serve", taken.Addr().String()), []string{"-serve " + taken.Addr().String()}},
		{append(esArgs, "-serve", "127.0.0.1:0", "-nats-token-file", filepath.Join(work, "missing")), []string{"-nats-token-file", "missing"}},
		{append(esArgs, "-serve", "127.0.0.1:0", "-pop", "200000"), []string{"-pop 200000", "at most"}},
		// Sizes that cannot fit: refused with the amount, before allocating.
		{append(esArgs, "-noise-size", "1099511627776"), []string{"needs at least 4.0 TiB", "noise table"}},
		{append(esArgs, "-pop", "1099511627776"), []string{"needs at least", "population"}},
		{[]string{"-arch", hugeArch}, []string{"needs at least", "parameters"}},
		// Fewer outputs than classes; a network the images do not fit.
		{[]string{"-arch", "784-5"}, []string{"-arch 784-5", "5 outputs", "10 classes"}},
		{append(smallRun, "-arch", "100-10"), []string{"-arch 100-10", "100 inputs", "784"}},
		{append(smallRun, "-train-n", "100000"), []string{"-train-n 100000", "60000"}},
		// Folders: a finished run is never overwritten; a resume that cannot be.
		{append(smallRun, "-out", held), []string{"-out " + held, "already holds a run", "-resume"}},
		{[]string{"-resume", dead}, []string{"no checkpoint was ever written", dead}},
		{[]string{"-resume", filepath.Join(work, "nothing")}, []string{"-resume"}},
		{[]string{"-resume", work}, []string{"no checkpoint was ever written"}},
		{[]string{"-resume", held, "-lr", "0.5"}, []string{"-lr cannot change on -resume"}},
		{[]string{"-resume", held, "-lr", "NaN"}, []string{"-lr"}},
		{[]string{"-resume", held, "-pop", "8"}, []string{"-pop"}},
		{[]string{"-resume", dead, "-out", held}, []string{"no checkpoint"}},
	}
	before := snapshot(t, work)
	for _, c := range cases {
		code, _, stderr := runTrain(t, context.Background(), c.args...)
		if code != 2 || !strings.Contains(stderr, "train: ") {
			t.Errorf("%.120v: exit %d, stderr %q; want 2", c.args, code, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%.120v: stderr %q lacks %q", c.args, stderr, w)
			}
		}
		sameSnapshot(t, strings.Join(c.args, " "), before, snapshot(t, work))
	}
	// The folder a run died in before its first checkpoint takes a new run.
	if code, _, stderr := runTrain(t, context.Background(), append(smallRun, "-budget", "1ns", "-out", dead)...); code != 0 {
		t.Errorf("a new run in a folder without a run: exit %d, %s", code, stderr)
	}
}

// A run that fails on its input files (here a test set whose images are
// another size than the training set's) exits 1 before anything is
// created: the data is checked at load, not after an epoch of training.
func TestDataMismatchTouchesNothing(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	data := filepath.Join(work, "data")
	os.Mkdir(data, 0o755)
	idx := func(name string, dims ...uint32) {
		var b []byte
		magic := uint32(0x0801)
		if len(dims) > 1 {
			magic = 0x0803
		}
		b = binary.BigEndian.AppendUint32(b, magic)
		n := uint32(1)
		for _, d := range dims {
			b = binary.BigEndian.AppendUint32(b, d)
			n *= d
		}
		os.WriteFile(filepath.Join(data, name), append(b, make([]byte, n)...), 0o644)
	}
	idx("train-images-idx3-ubyte", 30, 28, 28)
	idx("train-labels-idx1-ubyte", 30)
	idx("t10k-images-idx3-ubyte", 10, 27, 28)
	idx("t10k-labels-idx1-ubyte", 10)
	before := snapshot(t, work)
	code, _, stderr := runTrain(t, context.Background(), "-arch", "784-16-10", "-data", data, "-q", "-batch", "10")
	if code != 1 || !strings.Contains(stderr, "test images are 27×28, training images 28×28") {
		t.Errorf("test images of another size: exit %d, %s", code, stderr)
	}
	sameSnapshot(t, "mismatched data", before, snapshot(t, work))
}

// A bad UNDERFLOW_BACKEND is one line and exit 2, not a panic trace.
func TestBadBackendEnv(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the command as a subprocess; not under -short (qemu)")
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "UNDERFLOW_TRAIN_MAIN=1", "UNDERFLOW_TRAIN_ARGS=-q", "UNDERFLOW_BACKEND=sse9")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	msg := strings.TrimSpace(string(out))
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || strings.Contains(msg, "\n") || !strings.Contains(msg, `UNDERFLOW_BACKEND="sse9"`) {
		t.Errorf("UNDERFLOW_BACKEND=sse9: %v, output %q; want exit 2 and one line", err, msg)
	}
	if entries, _ := os.ReadDir(cmd.Dir); len(entries) != 0 {
		t.Errorf("created %v", entries)
	}
}

// interruptedRun runs args until step stop, as Ctrl-C would stop it.
func interruptedRun(t *testing.T, stop int64, args ...string) {
	t.Helper()
	o, err := parseOptions(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o.stopAfter = stop
	var out bytes.Buffer
	if err := run(context.Background(), o, &out, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
}

type wallSummary struct {
	ParamsSHA256        string   `json:"params_sha256"`
	Steps               int64    `json:"steps"`
	Resumed             bool     `json:"resumed"`
	WallSeconds         float64  `json:"wall_seconds"`
	SessionWallSeconds  *float64 `json:"session_wall_seconds"`
	TrainSeconds        float64  `json:"train_seconds"`
	SessionTrainSeconds *float64 `json:"session_train_seconds"`
}

func readWallSummary(t *testing.T, dir string) wallSummary {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s wallSummary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// A backprop run resumed after its options.json was edited is refused,
// naming the setting: the checkpoint carries what the trajectory depends
// on. Put back, the run resumes and ends with the straight run's bits, and
// its summary counts the wall time of both sessions.
func TestBackpropResumeRefusesEditedOptions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	interruptedRun(t, 13, append(smallRun, "-out", dir)...)
	optsPath := filepath.Join(dir, "options.json")
	orig, err := os.ReadFile(optsPath)
	if err != nil {
		t.Fatal(err)
	}
	ckPath := filepath.Join(dir, backpropCheckpoint)
	ck, err := safetensors.LoadCheckpoint(ckPath)
	if err != nil {
		t.Fatal(err)
	}
	prior, _ := strconvFloat(ck.Meta["wall_seconds"])
	if ck.Meta["config"] == "" || ck.Meta["train_examples"] != "400" || !(prior > 0) {
		t.Fatalf("checkpoint metadata %v lacks the config, the examples or the wall time", ck.Meta)
	}
	for _, c := range []struct {
		key  string
		val  any
		want string
	}{
		{"seed", 2, "seed"}, {"epochs", 3, "epochs"}, {"batch", 10, "batch"}, {"lr", 0.002, "lr"}, {"shift", 2, "shift"},
		{"tau", 0.2, "tau"}, {"surrogate", "mask", "surrogate"}, {"weight_decay", 0.01, "weight_decay"},
		{"lr_final", 0.0001, "lr_final"}, {"train_n", 300, "400 examples"}, {"train_n", 0, "examples"}, {"", nil, "checkpoint"},
	} {
		var m map[string]any
		json.Unmarshal(orig, &m)
		if c.key == "" {
			m = map[string]any{} // options.json replaced by {}
		} else {
			m[c.key] = c.val
		}
		b, _ := json.Marshal(m)
		os.WriteFile(optsPath, b, 0o644)
		before := snapshot(t, dir)
		code, _, stderr := runTrain(t, context.Background(), "-resume", dir, "-q")
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("options.json with %s %v: exit %d, stderr %q; want a refusal naming %s", c.key, c.val, code, stderr, c.want)
		}
		sameSnapshot(t, "refused resume", before, snapshot(t, dir))
	}
	// The run's own options, with the surrogate and the epochs left to the
	// method's default, as in a folder started before the defaults changed:
	// the resume takes them from the checkpoint and continues the run.
	var m map[string]any
	json.Unmarshal(orig, &m)
	m["surrogate"], m["epochs"] = "", 0
	b, _ := json.Marshal(m)
	os.WriteFile(optsPath, b, 0o644)
	if code, _, stderr := runTrain(t, context.Background(), "-resume", dir, "-q"); code != 0 {
		t.Fatalf("resume with the run's own options, defaults unresolved: exit %d, %s", code, stderr)
	}
	s := readWallSummary(t, dir)
	if s.ParamsSHA256 != goldenSmallRunSHA || s.Steps != 40 || !s.Resumed {
		t.Errorf("resumed run: %+v; want %d steps and the golden %s", s, 40, goldenSmallRunSHA)
	}
	if s.SessionWallSeconds == nil || s.SessionTrainSeconds == nil {
		t.Fatalf("summary lacks session_wall_seconds or session_train_seconds: %+v", s)
	}
	if math.Abs(s.WallSeconds-(prior+*s.SessionWallSeconds)) > 0.002 || math.Abs(s.TrainSeconds-(prior+*s.SessionTrainSeconds)) > 0.002 {
		t.Errorf("wall_seconds %v, train_seconds %v; want the first session's %v plus this one's %v and %v",
			s.WallSeconds, s.TrainSeconds, prior, *s.SessionWallSeconds, *s.SessionTrainSeconds)
	}
}

func strconvFloat(s string) (float64, error) {
	var f float64
	err := json.Unmarshal([]byte(s), &f)
	return f, err
}

// An ES run started with -init F takes what it needs from F (the held
// norms, the start's hash) from its checkpoint on resume: F replaced by
// another model, or deleted, changes nothing. A checkpoint from before it
// kept them still resumes, from F as then.
func TestESInitResumeNeedsNoInitFile(t *testing.T) {
	root := t.TempDir()
	arch, _ := fpnet.ParseArch("784-16-16-10")
	model := filepath.Join(root, "start.safetensors")
	p := fpnet.InitParams(arch, 5)
	for i := range p {
		p[i] *= 1.5 // norms unlike the seeded initialisation's
	}
	if err := safetensors.SaveParams(model, arch, "openai2017", p, nil); err != nil {
		t.Fatal(err)
	}
	args := func(out string) []string {
		return []string{"-method", "es", "-arch", "784-16-16-10", "-train-n", "500", "-test-n", "100", "-pop", "4", "-batch", "16",
			"-noise-size", "65536", "-generations", "6", "-eval-every", "1h", "-q", "-workers", "1", "-init", model, "-out", out}
	}
	straight := filepath.Join(root, "straight")
	if code, _, stderr := runTrain(t, context.Background(), args(straight)...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := readWallSummary(t, straight).ParamsSHA256

	cut := filepath.Join(root, "cut")
	interruptedRun(t, 3, args(cut)...)
	copies := map[string]string{}
	for _, name := range []string{"replaced", "deleted", "old"} {
		copies[name] = filepath.Join(root, name)
		if err := os.CopyFS(copies[name], os.DirFS(cut)); err != nil {
			t.Fatal(err)
		}
	}
	// A checkpoint as written before it kept the norms and the start's hash.
	oldCk := filepath.Join(copies["old"], esCheckpoint)
	ck, err := es.LoadCheckpoint(oldCk)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Meta["held_norms"] == "" || ck.Meta["start_sha256"] != fpnet.ParamsSHA256(p) {
		t.Fatalf("checkpoint metadata %v lacks the held norms or the start's hash", ck.Meta)
	}
	delete(ck.Meta, "held_norms")
	delete(ck.Meta, "start_sha256")
	if err := ck.Save(oldCk); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runTrain(t, context.Background(), "-resume", copies["old"], "-q"); code != 0 {
		t.Fatalf("old checkpoint: exit %d, %s", code, stderr)
	}

	other := fpnet.InitParams(arch, 9)
	if err := safetensors.SaveParams(model, arch, "openai2017", other, nil); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runTrain(t, context.Background(), "-resume", copies["replaced"], "-q"); code != 0 {
		t.Fatalf("-init file replaced: exit %d, %s", code, stderr)
	}
	os.Remove(model)
	if code, _, stderr := runTrain(t, context.Background(), "-resume", copies["deleted"], "-q"); code != 0 {
		t.Fatalf("-init file deleted: exit %d, %s", code, stderr)
	}
	for _, name := range []string{"replaced", "deleted", "old"} {
		if got := readWallSummary(t, copies[name]).ParamsSHA256; got != want {
			t.Errorf("%s: resumed run ends with %s, the straight run with %s", name, got, want)
		}
	}
	if testing.Short() {
		return
	}
	// Through workers: the job's identity (the start's hash) comes from
	// the checkpoint too.
	if err := safetensors.SaveParams(model, arch, "openai2017", p, nil); err != nil {
		t.Fatal(err)
	}
	served := filepath.Join(root, "served")
	interruptedRun(t, 3, append(args(served), "-serve", "127.0.0.1:-1")...)
	os.Remove(model)
	code, _, stderr := runTrain(t, context.Background(), "-resume", served, "-q", "-serve", "127.0.0.1:-1")
	if code != 0 {
		t.Fatalf("served run resumed without its -init file: exit %d, %s", code, stderr)
	}
	if got := readWallSummary(t, served).ParamsSHA256; got != want {
		t.Errorf("served run resumed: %s, the straight run %s", got, want)
	}
}

// Two runs with the default folder name started in the same second get a
// folder each; an -out folder that holds a run is never written into.
func TestRunFoldersNeverShared(t *testing.T) {
	t.Chdir(t.TempDir())
	base := filepath.Join("runs", "backprop-ftz-20260101-000000")
	a, errA := newRunDir(base)
	b, errB := newRunDir(base)
	if errA != nil || errB != nil || a == b || a != base || b != base+"-2" {
		t.Errorf("newRunDir twice: %q (%v), %q (%v); want %q and %q", a, errA, b, errB, base, base+"-2")
	}
	for i := 0; i < 2; i++ {
		if code, _, stderr := runTrain(t, context.Background(), append(smallRun, "-budget", "1ns")...); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	}
	var summaries int
	entries, _ := os.ReadDir("runs")
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join("runs", e.Name(), "summary.json")); err == nil {
			summaries++
		}
	}
	if summaries != 2 {
		t.Errorf("two default runs left %d summaries in %v", summaries, entries)
	}
}

// JSON has no NaN or Inf: a summary or metrics line holding one is written
// with null there, never as an empty file or a dropped line.
func TestNonFiniteNumbersInJSON(t *testing.T) {
	v := jsonSafe(map[string]any{"loss": math.Inf(1), "nan": math.NaN(), "f32": float32(math.Inf(-1)), "ok": 0.5, "s": "x"})
	b, err := json.Marshal(v)
	if err != nil || string(b) != `{"f32":null,"loss":null,"nan":null,"ok":0.5,"s":"x"}` {
		t.Errorf("jsonSafe: %s, %v", b, err)
	}
}

// Every flag belongs to every method (commonFlags) or to the methods that
// list it; a new flag that belongs nowhere would be refused everywhere.
func TestEveryFlagHasAMethod(t *testing.T) {
	var o Options
	newFlagSet(&o, io.Discard).VisitAll(func(f *flag.Flag) {
		if slices.Contains(commonFlags, f.Name) {
			return
		}
		for _, m := range methods {
			if slices.Contains(m.Flags, f.Name) {
				return
			}
		}
		t.Errorf("flag -%s is in no method's Flags and not in commonFlags", f.Name)
	})
}

// The options.json loader takes arbitrary bytes: a refusal or options that
// validate and encode again (JSON has no NaN or Inf), never a panic.
func FuzzOptionsJSON(f *testing.F) {
	o, err := parseOptions(append(smallRun, "-out", f.TempDir()), io.Discard)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(o)
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"method":"es","arch":"784-65536-10","noise_size":-1,"pop":3,"sigma":1e300}`))
	f.Add([]byte(`{"method":"backprop","tau":0.2,"lr":1e-50,"workers":0,"serve":"x"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		o := &Options{Resume: "resumed", Set: map[string]bool{}, given: map[string]string{}}
		if err := o.adoptResumed(raw); err != nil {
			return
		}
		if err := o.validate(); err != nil {
			if !errors.Is(err, errUsage) {
				t.Fatalf("a refusal that is not a usage error: %v", err)
			}
			return
		}
		if _, err := json.Marshal(o); err != nil {
			t.Fatalf("validated options do not encode: %v", err)
		}
	})
}
