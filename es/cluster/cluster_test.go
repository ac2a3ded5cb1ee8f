package cluster

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed8b67a5e0/underflow/es"
	"github.com/seed8b67a5e0/underflow/es/wire"
	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/mnist"
	"github.com/seed8b67a5e0/underflow/kernels"
)

var mnistData struct {
	once  sync.Once
	train *fpnet.Dataset
	err   error
}

func loadTrain(t testing.TB) *fpnet.Dataset {
	t.Helper()
	mnistData.once.Do(func() { mnistData.train, _, mnistData.err = mnist.Load("") })
	if mnistData.err != nil {
		t.Fatal(mnistData.err)
	}
	return mnistData.train
}

// tinyJob is a small ES run on real MNIST: 784-16-16-10 under the
// article's recipe, held norms, on the first 2000 training images.
type tinyJob struct {
	guide float32
	rank  int // low-rank perturbations (es.Config.Rank)
}

func (j tinyJob) trainer(t testing.TB, slots int) (*es.Trainer, *es.NetObjective, []float32) {
	t.Helper()
	train := loadTrain(t).Subset(2000)
	recipe, err := fpnet.RecipeByName("openai2017")
	if err != nil {
		t.Fatal(err)
	}
	arch := fpnet.Arch{Sizes: []int{784, 16, 16, 10}}
	obj, err := es.NewNetObjective(fpnet.NewNet(arch, recipe), train, 32, 5, es.FitnessXent)
	if err != nil {
		t.Fatal(err)
	}
	start := fpnet.InitParams(arch, 3)
	obj.HoldLayerNorms(start)
	cfg := es.DefaultConfig()
	cfg.Pop, cfg.Sigma, cfg.LR, cfg.NoiseSize, cfg.Workers = 20, 0.02, 0.01, 1<<16, slots
	cfg.Guide, cfg.Rank = j.guide, j.rank
	noise, err := es.NewNoiseTable(cfg.NoiseSeed, cfg.NoiseSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := es.NewTrainer(cfg, obj, noise, start)
	if err != nil {
		t.Fatal(err)
	}
	return tr, obj, start
}

// reference is the job's parameter hash after gens generations in one
// process.
func (j tinyJob) reference(t testing.TB, gens int) string {
	tr, _, _ := j.trainer(t, 2)
	for range gens {
		tr.Step()
	}
	return fpnet.ParamsSHA256(tr.Params)
}

func startServer(t testing.TB, store string) (*server.Server, string) {
	t.Helper()
	ns, err := StartServer(ServerConfig{Addr: "127.0.0.1:-1", StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return ns, ClientURL(ns, Security{})
}

func connect(t testing.TB, url, name string) *nats.Conn {
	t.Helper()
	nc, err := Connect(url, Security{}, name, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// startWorkers runs in-process workers with the given slots; the returned
// stop ends them and waits.
func startWorkers(t testing.TB, url string, slots ...int) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, n := range slots {
		w, err := NewWorker(WorkerConfig{Conn: connect(t, url, "worker"), ID: "w" + string(rune('0'+i)), Slots: n,
			Data: func() (*fpnet.Dataset, error) { return loadTrain(t), nil }, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Run(ctx); err != nil {
				t.Errorf("worker: %v", err)
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

func TestClusterSameBitsAsOneProcess(t *testing.T) {
	const gens = 8
	for _, job := range []tinyJob{{}, {guide: 0.5}, {rank: 2}} {
		want := job.reference(t, gens)
		_, url := startServer(t, t.TempDir())
		stop := startWorkers(t, url, 1, 2)
		tr, obj, start := job.trainer(t, 1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		c, err := NewCoordinator(ctx, CoordinatorConfig{Conn: connect(t, url, "coordinator"), Spec: NewSpec(tr, obj, fpnet.ParamsSHA256(start)),
			Trainer: tr, Fresh: true, AckWait: 2 * time.Second, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		for range gens {
			if _, err := c.Step(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Close(ctx, true); err != nil {
			t.Fatal(err)
		}
		cancel()
		stop()
		if got := fpnet.ParamsSHA256(tr.Params); got != want {
			t.Fatalf("guide %v, rank %d, backend %s: the cluster gives %s, one process %s", job.guide, job.rank, kernels.Backend(), got, want)
		}
		t.Logf("guide %v, rank %d: %s; shares %+v", job.guide, job.rank, want, c.Shares())
	}
}

// logSink collects log lines for tests that look for a message.
type logSink struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
}

func (l *logSink) logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
	l.t.Log(s)
}

func (l *logSink) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// runner runs a tiny job's coordinator against a fresh embedded server.
type runner struct {
	t   *testing.T
	url string
	tr  *es.Trainer
	c   *Coordinator
	ctx context.Context
	log *logSink
}

func newRunner(t *testing.T, job tinyJob, cfg CoordinatorConfig) *runner {
	t.Helper()
	_, url := startServer(t, t.TempDir())
	tr, obj, start := job.trainer(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	r := &runner{t: t, url: url, tr: tr, ctx: ctx, log: &logSink{t: t}}
	cfg.Conn, cfg.Spec, cfg.Trainer, cfg.Fresh, cfg.Logf = connect(t, url, "coordinator"), NewSpec(tr, obj, fpnet.ParamsSHA256(start)), tr, true, r.log.logf
	if cfg.AckWait == 0 {
		cfg.AckWait = 2 * time.Second
	}
	c, err := NewCoordinator(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	return r
}

func (r *runner) steps(n int) {
	r.t.Helper()
	for range n {
		if _, err := r.c.Step(r.ctx); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *runner) finish(want string) {
	r.t.Helper()
	if err := r.c.Close(r.ctx, true); err != nil {
		r.t.Fatal(err)
	}
	if got := fpnet.ParamsSHA256(r.tr.Params); got != want {
		r.t.Fatalf("the cluster gives %s, one process %s", got, want)
	}
}

func (r *runner) share(worker string) int64 {
	for _, s := range r.c.Shares() {
		if s.Worker == worker {
			return s.Evaluations
		}
	}
	return 0
}

// worker starts one in-process worker; stop ends it and waits.
func (r *runner) worker(cfg WorkerConfig) (w *Worker, stop func()) {
	r.t.Helper()
	cfg.Conn = connect(r.t, r.url, cfg.ID)
	if cfg.Data == nil {
		cfg.Data = func() (*fpnet.Dataset, error) { return loadTrain(r.t), nil }
	}
	cfg.Logf = r.log.logf
	w, err := NewWorker(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			r.t.Errorf("worker %s: %v", cfg.ID, err)
		}
	}()
	return w, func() { cancel(); <-done }
}

// waitFor polls cond for up to 30 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestClusterRefusesWorkersOfAnotherDatasetOrJob(t *testing.T) {
	const gens = 6
	want := tinyJob{}.reference(t, gens)
	r := newRunner(t, tinyJob{}, CoordinatorConfig{})
	other := *loadTrain(t)
	other.Images = append([]float32(nil), other.Images...)
	other.Images[1000] += 1.0 / 255 // one pixel of another MNIST
	_, stopA := r.worker(WorkerConfig{ID: "other-data", Slots: 1, Data: func() (*fpnet.Dataset, error) { return &other, nil }})
	defer stopA()
	_, stopB := r.worker(WorkerConfig{ID: "other-job", Slots: 1, Job: strings.Repeat("ab", 16)})
	defer stopB()
	waitFor(t, "both refusals", func() bool { return r.log.has("other-data: refusing") && r.log.has("other-job: refusing") })
	_, stopC := r.worker(WorkerConfig{ID: "honest", Slots: 2})
	defer stopC()
	r.steps(gens)
	for _, who := range []string{"other-data", "other-job"} {
		if n := r.share(who); n != 0 {
			t.Errorf("refused worker %s evaluated %d members", who, n)
		}
	}
	if !r.log.has("another dataset") || !r.log.has("takes job abab") {
		t.Error("the refusals do not say why")
	}
	r.c.mu.Lock()
	refused := r.c.workers["other-data"].hb
	r.c.mu.Unlock()
	if refused.State != wire.WorkerRefused || !strings.Contains(refused.Reason, "another dataset") {
		t.Errorf("the coordinator heard %+v from the worker of another dataset", refused)
	}
	r.finish(want)
}

func TestClusterWorkersJoinAndLeaveMidRun(t *testing.T) {
	const gens = 24
	r := newRunner(t, tinyJob{}, CoordinatorConfig{CheckpointEvery: 50 * time.Millisecond})
	_, stopA := r.worker(WorkerConfig{ID: "first", Slots: 1})
	r.steps(8)
	_, stopB := r.worker(WorkerConfig{ID: "joiner", Slots: 2})
	waitFor(t, "the joiner to take work", func() bool {
		r.steps(1)
		return r.share("joiner") > 0
	})
	stopA() // leaves at once, maybe holding a task
	for r.tr.Gen < gens {
		r.steps(1)
	}
	stopB()
	if r.share("first") == 0 || r.share("joiner") == 0 {
		t.Errorf("shares %+v: both workers should have evaluated", r.c.Shares())
	}
	// On a slow machine the joiner may take its first task past gens.
	r.finish(tinyJob{}.reference(t, int(r.tr.Gen)))
}

func TestClusterDivergedWorkerResynchronises(t *testing.T) {
	const gens = 12
	want := tinyJob{}.reference(t, gens)
	r := newRunner(t, tinyJob{}, CoordinatorConfig{CheckpointEvery: 50 * time.Millisecond})
	w, stop := r.worker(WorkerConfig{ID: "drifter", Slots: 1})
	defer stop()
	r.steps(4)
	// The worker's own step goes wrong once: its θ, and so its hash, leave
	// the job's.
	s := w.sess.Load()
	s.mu.Lock()
	s.tr.Params[7] = math.Nextafter32(s.tr.Params[7], 1)
	s.theta = thetaHash(s.tr.Params)
	s.mu.Unlock()
	for r.tr.Gen < gens {
		r.steps(1)
	}
	if !r.log.has("resynchronises") {
		t.Error("the worker did not say it resynchronises")
	}
	r.finish(want)
}

func TestClusterDropsForgedMessages(t *testing.T) {
	const gens = 10
	want := tinyJob{}.reference(t, gens)
	r := newRunner(t, tinyJob{}, CoordinatorConfig{})
	_, stop := r.worker(WorkerConfig{ID: "honest", Slots: 2})
	defer stop()
	nc := connect(t, r.url, "forger")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	id := r.c.JobID()
	other := wire.JobID{1, 2, 3}
	pub := func(subject string, data []byte) {
		t.Helper()
		if _, err := js.Publish(r.ctx, subject, data); err != nil {
			t.Fatalf("publishing the forgery on %s: %v", subject, err)
		}
	}
	r.steps(2)
	for g := 2; g < gens; g++ {
		gen, theta, pairs := r.tr.Gen, r.c.theta, r.tr.Pairs()
		scores := func(n int, f float64) []wire.Score {
			s := make([]wire.Score, 2*n)
			for i := range s {
				s[i].Fitness = f
			}
			return s
		}
		res := wire.Result{Job: id, Gen: gen, Lo: 0, Hi: 2, Theta: theta, Worker: "forger", Scores: scores(2, math.NaN())}
		good := wire.AppendResult(nil, res)
		forged := map[string]wire.Result{
			"another job":        {Job: other, Gen: gen, Lo: 0, Hi: 1, Theta: theta, Worker: "forger", Scores: scores(1, 0)},
			"a future gen":       {Job: id, Gen: gen + 3, Lo: 0, Hi: 1, Theta: theta, Worker: "forger", Scores: scores(1, 0)},
			"items out of range": {Job: id, Gen: gen, Lo: pairs, Hi: pairs + 3, Theta: theta, Worker: "forger", Scores: scores(3, 0)},
			"another θ":          {Job: id, Gen: gen, Lo: 1, Hi: 2, Theta: wire.Hash{9}, Worker: "forger", Scores: scores(1, 0)},
			"a center with two":  {Job: id, Gen: gen, Lo: pairs, Hi: pairs + 1, Theta: theta, Worker: "forger", Scores: scores(1, 1)},
		}
		for _, f := range forged {
			pub(wire.ResultSubject(id), wire.AppendResult(nil, f))
		}
		pub(wire.ResultSubject(id), good)                   // NaN fitness where the truth is finite
		pub(wire.ResultSubject(id), good[:len(good)-5])     // truncated
		pub(wire.ResultSubject(id), []byte("UFES\x02\x01")) // a header and nothing
		pub(wire.ResultSubject(id), make([]byte, 4000))     // zeros
		long := append(append([]byte(nil), good...), make([]byte, 64)...)
		pub(wire.ResultSubject(id), long) // trailing bytes
		if _, err := js.Publish(r.ctx, wire.ResultSubject(id), make([]byte, 1<<20)); err == nil {
			t.Error("the server took a 1 MiB result")
		}
		// Outcomes: another job's, a wrong length, another θ, garbage.
		o := wire.Outcome{Job: id, Gen: gen, Theta: wire.Hash{7}, Fitness: make([]float64, 2*pairs)}
		pub(wire.OutcomeSubject(id), wire.AppendOutcome(nil, o))
		o.Theta, o.Fitness = theta, o.Fitness[:4]
		pub(wire.OutcomeSubject(id), wire.AppendOutcome(nil, o))
		o.Job, o.Fitness = other, make([]float64, 2*pairs)
		pub(wire.OutcomeSubject(id), wire.AppendOutcome(nil, o))
		pub(wire.OutcomeSubject(id), []byte("\x00garbage"))
		// Tasks: garbage, another job's, a range past the population.
		pub(wire.TaskSubject(id), []byte("not a task"))
		pub(wire.TaskSubject(id), wire.AppendTask(nil, wire.Task{Job: other, Gen: gen, Lo: 0, Hi: 1, Theta: theta}))
		pub(wire.TaskSubject(id), wire.AppendTask(nil, wire.Task{Job: id, Gen: gen, Lo: pairs, Hi: pairs + 9, Theta: theta}))
		// Heartbeats and the job's entry.
		nc.Publish(wire.HeartbeatSubject, []byte(`{"protocol":1,"worker":"bad name!"}`))
		nc.Publish(wire.HeartbeatSubject, make([]byte, 8000))
		if g == 5 {
			kv, err := js.KeyValue(r.ctx, wire.JobBucket)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Put(r.ctx, wire.JobKey, []byte(`{"protocol":1,"id":"x"}`)); err != nil {
				t.Fatal(err)
			}
		}
		r.steps(1)
	}
	// The forged NaN loses either way: checked at once when it comes first,
	// or found to disagree with the honest worker's result.
	if !r.log.has("replaced worker forger's") && !r.log.has("worker forger sent") {
		t.Error("the forged NaN fitness went unnoticed")
	}
	for _, want := range []string{"for job 01020300", "for generation", "items [", "at θ 090000", "second score",
		"dropped an outcome", "dropped a task", "dropped a heartbeat", "entry was overwritten"} {
		if !r.log.has(want) {
			t.Errorf("nothing logged %q", want)
		}
	}
	if n := r.share("forger"); n != 0 {
		t.Errorf("the forger's results counted for %d members", n)
	}
	r.finish(want)
}

func TestClusterSecondCoordinatorOnOneServerIsAnError(t *testing.T) {
	r := newRunner(t, tinyJob{}, CoordinatorConfig{})
	_, stop := r.worker(WorkerConfig{ID: "w", Slots: 1})
	defer stop()
	r.steps(2)
	tr, obj, start := tinyJob{guide: 0.5}.trainer(t, 1) // another job
	if _, err := NewCoordinator(r.ctx, CoordinatorConfig{Conn: connect(t, r.url, "second"), Spec: NewSpec(tr, obj, fpnet.ParamsSHA256(start)),
		Trainer: tr, Fresh: true, Logf: t.Logf}); err != nil {
		t.Fatal(err)
	}
	var err error
	for i := 0; i < 50 && err == nil; i++ {
		_, err = r.c.Step(r.ctx)
	}
	if err == nil || !strings.Contains(err.Error(), "another coordinator announced job") {
		t.Fatalf("the first coordinator goes on: %v", err)
	}
}
