//go:build !purego

package main

// End-to-end tests of ES across processes: the coordinator (cmd/train
// -method es -serve/-nats), esworker processes, an external nats-server
// built from its module, and an arm64 worker under qemu-aarch64, all on
// loopback. Each test kills or stops a real process where the issue says,
// and checks that the run ends with the params_sha256 of one process.
// Every test is bounded by a deadline and stops what it started.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed8b67a5e0/underflow/es/wire"
)

// jobFlags is a small ES run on real MNIST: long enough (150 generations of
// a 784-32-32-10 network) to be interrupted mid-run, short enough for a
// test.
var jobFlags = []string{"-method", "es", "-arch", "784-32-32-10", "-pop", "40", "-batch", "50", "-generations", "150",
	"-noise-size", "1000000", "-train-n", "5000", "-test-n", "1000", "-eval-every", "1h", "-q"}

// binaries are built once per test process.
var binaries struct {
	once                                sync.Once
	dir, train, worker, arm64, natsSrvr string
	err                                 error
}

func build(t *testing.T) {
	t.Helper()
	// The go command's test cache knows this package's dependencies, not
	// cmd/train's, whose binary the tests build: reading its sources makes
	// the cache see them.
	srcs, _ := filepath.Glob("../train/*.go")
	for _, src := range srcs {
		os.ReadFile(src)
	}
	binaries.once.Do(func() {
		binaries.dir, binaries.err = os.MkdirTemp("", "esworker-e2e-")
		if binaries.err != nil {
			return
		}
		b := &binaries
		b.train, b.worker = filepath.Join(b.dir, "train"), filepath.Join(b.dir, "esworker")
		b.arm64, b.natsSrvr = filepath.Join(b.dir, "esworker-arm64"), filepath.Join(b.dir, "nats-server")
		for _, job := range []struct {
			out, pkg string
			env      []string
		}{
			{b.train, "../train", nil},
			{b.worker, ".", nil},
			{b.natsSrvr, "github.com/nats-io/nats-server/v2", nil},
			{b.arm64, ".", []string{"GOARCH=arm64", "CGO_ENABLED=0"}},
		} {
			cmd := exec.Command("go", "build", "-o", job.out, job.pkg)
			cmd.Env = append(os.Environ(), job.env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.err = fmt.Errorf("go build %s: %v\n%s", job.pkg, err, out)
				return
			}
		}
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// proc is a started process whose output goes to a file in the test's
// folder; it is killed when the test ends.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func start(t *testing.T, name string, env []string, argv ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			out, _ := os.ReadFile(p.log)
			t.Logf("--- %s:\n%s", p.name, tail(out, 40))
		}
	})
	return p
}

func tail(b []byte, lines int) string {
	s := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(s[max(0, len(s)-lines):], "\n")
}

// wait waits for the process to exit, up to d.
func (p *proc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		t.Fatalf("%s still running after %v", p.name, d)
		return nil
	}
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%v to %s: %v", sig, p.name, err)
	}
}

// freePort finds a loopback port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// summary reads a run folder's summary.json.
func summary(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

var reference struct {
	once sync.Once
	sha  string
	err  error
}

// oneProcess is params_sha256 of the job in one process, the bits every
// distributed run must end with.
func oneProcess(t *testing.T) string {
	t.Helper()
	build(t)
	reference.once.Do(func() {
		dir, err := os.MkdirTemp("", "esworker-ref-")
		if err != nil {
			reference.err = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "run")
		cmd := exec.Command(binaries.train, append(jobFlags, "-workers", "2", "-out", out)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			reference.err = fmt.Errorf("one-process run: %v\n%s", err, b)
			return
		}
		b, err := os.ReadFile(filepath.Join(out, "summary.json"))
		if err != nil {
			reference.err = err
			return
		}
		var s struct {
			SHA string `json:"params_sha256"`
		}
		reference.err = json.Unmarshal(b, &s)
		reference.sha = s.SHA
	})
	if reference.err != nil {
		t.Fatal(reference.err)
	}
	return reference.sha
}

// watcher follows the job's outcomes on the server, as an outside client,
// and reports the last generation published.
type watcher struct {
	gen atomic.Int64
	nc  *nats.Conn

	mu      sync.Mutex
	results map[string]int // results seen, by worker
}

func watch(t *testing.T, url string) *watcher {
	t.Helper()
	w := &watcher{results: map[string]int{}}
	w.gen.Store(-1)
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	w.nc = nc
	// Results, not heartbeats: a heartbeat comes once a second, and a
	// fast machine runs the whole job in about a second.
	nc.Subscribe("ufes.result.>", func(m *nats.Msg) {
		if r, err := wire.ParseResult(m.Data); err == nil {
			w.mu.Lock()
			w.results[r.Worker]++
			w.mu.Unlock()
		}
	})
	nc.Flush() // the subscription is in place before anything is published, when the server is up
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; nc.Close() })
	go func() {
		defer close(done)
		js, _ := jetstream.New(nc)
		for ctx.Err() == nil {
			cons, err := js.OrderedConsumer(ctx, wire.OutcomeStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"ufes.outcome.*"}})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			it, err := cons.Messages()
			if err != nil {
				continue
			}
			go func() { <-ctx.Done(); it.Stop() }()
			for {
				m, err := it.Next()
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					break
				}
				if o, err := wire.ParseOutcome(m.Data()); err == nil && o.Gen > w.gen.Load() {
					w.gen.Store(o.Gen)
				}
			}
		}
	}()
	return w
}

// working waits until each worker has sent a result of the job.
func (w *watcher) working(t *testing.T, workers ...string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Millisecond) {
		w.mu.Lock()
		n := 0
		for _, id := range workers {
			if w.results[id] > 0 {
				n++
			}
		}
		w.mu.Unlock()
		if n == len(workers) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers %v not all evaluating after 2 minutes", workers)
		}
	}
}

// waitFile waits for a file to exist, up to a minute.
func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after a minute", path)
		}
	}
}

// coordinator starts cmd/train as a coordinator with no local evaluation.
func coordinator(t *testing.T, name, out string, extra ...string) *proc {
	t.Helper()
	args := append([]string{binaries.train}, jobFlags...)
	args = append(args, "-workers", "0", "-task-timeout", "1s", "-out", out)
	return start(t, name, nil, append(args, extra...)...)
}

// servedJob starts a coordinator that serves NATS on a free loopback port
// and a watcher on it, before any worker: the server's URL, the run folder.
func servedJob(t *testing.T) (url, out string, coord *proc, w *watcher) {
	t.Helper()
	port := freePort(t)
	url = fmt.Sprintf("nats://127.0.0.1:%d", port)
	out = filepath.Join(t.TempDir(), "run")
	coord = coordinator(t, "coordinator", out, "-serve", fmt.Sprintf("127.0.0.1:%d", port))
	return url, out, coord, watch(t, url)
}

func worker(t *testing.T, name, url string, extra ...string) *proc {
	t.Helper()
	return start(t, name, nil, append([]string{binaries.worker, "-nats", url, "-workers", "1", "-id", name}, extra...)...)
}

// finish waits for the coordinator and checks the run's bits, and that the
// workers are still there, waiting for the next job.
func finish(t *testing.T, coord *proc, out, want string, workers ...*proc) map[string]any {
	t.Helper()
	if err := coord.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // the server they were connected to has gone
	for _, w := range workers {
		select {
		case <-w.done:
			log, _ := os.ReadFile(w.log)
			t.Errorf("worker %s exited (%v):\n%s", w.name, w.err, tail(log, 20))
		default:
		}
	}
	s := summary(t, out)
	if s["params_sha256"] != want {
		t.Fatalf("params_sha256 %v, one process %s", s["params_sha256"], want)
	}
	return s
}

func TestWorkerKilledMidGenerationLosesNothing(t *testing.T) {
	want := oneProcess(t)
	url, out, coord, w := servedJob(t)
	victim := worker(t, "victim", url)
	survivor := worker(t, "survivor", url)
	w.working(t, "victim", "survivor")
	victim.signal(t, syscall.SIGKILL) // busy, so most likely holding a task
	killed := w.gen.Load()
	s := finish(t, coord, out, want, survivor)
	if killed >= 140 {
		t.Errorf("the worker was killed at generation %d of 150, not mid-run", killed)
	}
	t.Logf("killed at generation %d; shares: %v", killed, s["cluster"])
}

func TestWorkerStoppedPastTheAckWaitRejoins(t *testing.T) {
	want := oneProcess(t)
	url, out, coord, w := servedJob(t)
	sleeper := worker(t, "sleeper", url)
	awake := worker(t, "awake", url)
	w.working(t, "sleeper", "awake")
	sleeper.signal(t, syscall.SIGSTOP)
	stopped := w.gen.Load()
	time.Sleep(2500 * time.Millisecond) // the task it holds goes to the other worker after 1 s
	if w.gen.Load() <= stopped {
		t.Errorf("no generation finished while a worker was stopped (at %d)", stopped)
	}
	sleeper.signal(t, syscall.SIGCONT)
	finish(t, coord, out, want, sleeper, awake)
}

func TestCoordinatorKilledAndResumedWorkersCarryOn(t *testing.T) {
	want := oneProcess(t)
	url, out, coord, w := servedJob(t)
	a, b := worker(t, "a", url), worker(t, "b", url)
	w.working(t, "a", "b")
	waitFile(t, filepath.Join(out, "es-checkpoint.bin")) // a resume needs one
	coord.signal(t, syscall.SIGKILL)
	coord.wait(t, 30*time.Second)
	// The embedded server died with it; -resume brings both back on the
	// address in the run's options.json, with the streams in the run folder.
	again := start(t, "coordinator-again", nil, binaries.train, "-resume", out, "-q")
	finish(t, again, out, want, a, b)
	log, _ := os.ReadFile(again.log)
	if !bytes.Contains(log, []byte("resumed")) {
		t.Errorf("the second coordinator did not resume:\n%s", log)
	}
	t.Logf("the resumed coordinator:\n%s", tail(log, 12))
}

func TestExternalServerRestartedMidRun(t *testing.T) {
	want := oneProcess(t)
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	store := t.TempDir()
	serve := func(name string) *proc {
		return start(t, name, nil, binaries.natsSrvr, "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-js", "-sd", store)
	}
	srv := serve("nats-server")
	out := filepath.Join(t.TempDir(), "run")
	coord := coordinator(t, "coordinator", out, "-nats", url)
	w := watch(t, url)
	a, b := worker(t, "a", url), worker(t, "b", url)
	w.working(t, "a", "b")
	srv.signal(t, syscall.SIGKILL)
	srv.wait(t, 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	serve("nats-server-again")
	finish(t, coord, out, want, a, b)
}

func TestMixedAmd64AndArm64Workers(t *testing.T) {
	qemu, err := exec.LookPath("qemu-aarch64-static")
	if err != nil {
		t.Fatal("the arm64 worker runs under qemu-aarch64-static (Debian qemu-user-static; make test installs it)")
	}
	want := oneProcess(t)
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	out := filepath.Join(t.TempDir(), "run")
	// The arm64 worker joins first and alone, so it evaluates some of the
	// run whatever its speed under emulation.
	w := watch(t, url)
	arm := start(t, "arm64", nil, qemu, binaries.arm64, "-nats", url, "-workers", "1", "-id", "arm64")
	coord := coordinator(t, "coordinator", out, "-serve", fmt.Sprintf("127.0.0.1:%d", port))
	w.working(t, "arm64")
	amd := worker(t, "amd64", url)
	s := finish(t, coord, out, want, arm, amd)
	shares, _ := s["cluster"].(map[string]any)["shares"].([]any)
	seen := map[string]bool{}
	for _, sh := range shares {
		m := sh.(map[string]any)
		seen[fmt.Sprint(m["goarch"], "/", m["backend"])] = m["evaluations"].(float64) > 0
	}
	if !seen["arm64/neon"] || !seen["amd64/avx2"] && !seen["amd64/avx512"] && !seen["amd64/purego"] {
		t.Fatalf("both architectures should have evaluated: %v", shares)
	}
	t.Logf("shares: %v", shares)
}
