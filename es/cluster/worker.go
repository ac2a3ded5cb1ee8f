package cluster

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed8b67a5e0/underflow/es"
	"github.com/seed8b67a5e0/underflow/es/wire"
	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/kernels"
)

// WorkerConfig is what a worker process brings: a connection, evaluation
// slots and its own copy of the training data. It learns everything else
// from the job on the server.
type WorkerConfig struct {
	Conn *nats.Conn
	// ID names the worker in logs, heartbeats and the coordinator's shares;
	// empty: host name, process ID and a random suffix.
	ID string
	// Slots is the number of evaluation goroutines (0: all CPUs).
	Slots int
	// Job, when set, is the only job ID this worker takes.
	Job string
	// Data loads this worker's training set; a job trains on a prefix of it,
	// which must have the job's fingerprint.
	Data func() (*fpnet.Dataset, error)
	// Noise, when set, is a noise table already built (a coordinator's own
	// worker shares the coordinator's); it is used when the job's matches.
	Noise *es.NoiseTable
	Logf  func(string, ...any)
}

// Worker evaluates the tasks of whatever job the server announces.
type Worker struct {
	cfg  WorkerConfig
	js   jetstream.JetStream
	logf func(string, ...any)

	data      *fpnet.Dataset
	dataErr   error
	dataOnce  sync.Once
	noise     *es.NoiseTable
	noiseHash string
	prints    map[int]string // data fingerprints by training-set size

	mu     sync.Mutex
	status wire.Heartbeat
	evals  atomic.Int64
	sess   atomic.Pointer[session] // the job being worked on (for tests)
}

// NewWorker checks the configuration.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Slots <= 0 {
		cfg.Slots = runtime.GOMAXPROCS(0)
	}
	if cfg.ID == "" {
		cfg.ID = DefaultWorkerID()
	}
	if err := wire.CheckWorkerID(cfg.ID); err != nil {
		return nil, fmt.Errorf("es worker: %v", err)
	}
	if cfg.Job != "" {
		if _, err := wire.ParseJobID(cfg.Job); err != nil {
			return nil, fmt.Errorf("es worker: -job: %v", err)
		}
	}
	if cfg.Data == nil {
		return nil, errors.New("es worker: no training data")
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, err
	}
	w := &Worker{cfg: cfg, js: js, logf: cfg.Logf, noise: cfg.Noise, prints: map[int]string{}}
	w.status = wire.Heartbeat{Protocol: wire.Version, Worker: cfg.ID, State: wire.WorkerIdle, Slots: cfg.Slots,
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Backend: kernels.Backend()}
	return w, nil
}

// ID is the worker's name.
func (w *Worker) ID() string { return w.cfg.ID }

func DefaultWorkerID() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, host)
	var b [3]byte
	rand.Read(b[:])
	id := fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	if len(id) > wire.MaxWorkerID {
		id = id[len(id)-wire.MaxWorkerID:]
	}
	return strings.TrimLeft(id, "-.")
}

// setStatus changes what the heartbeats say; a new state or job is said at
// once.
func (w *Worker) setStatus(f func(s *wire.Heartbeat)) {
	w.mu.Lock()
	old := w.status
	f(&w.status)
	changed := old.State != w.status.State || old.Job != w.status.Job
	w.mu.Unlock()
	if changed {
		w.heartbeat()
	}
}

func (w *Worker) heartbeat() {
	w.mu.Lock()
	hb := w.status
	w.mu.Unlock()
	hb.Evaluations = w.evals.Load()
	b, _ := json.Marshal(hb)
	w.cfg.Conn.Publish(wire.HeartbeatSubject, b)
}

// Run works until ctx ends: it waits for a coordinator, takes the job it
// announces, and follows it from job to job. A job it cannot run (another
// dataset, a protocol or a size it does not take) is refused with a message
// and a heartbeat that say why, and nothing of it is evaluated.
func (w *Worker) Run(ctx context.Context) error {
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			w.heartbeat()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	var kv jetstream.KeyValue
	for waited := false; ; waited = true {
		var err error
		if kv, err = w.js.KeyValue(ctx, wire.JobBucket); err == nil {
			break
		}
		if !waited {
			w.logf("es worker %s: waiting for a coordinator (%v)", w.cfg.ID, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	watch, err := kv.Watch(ctx, wire.JobKey)
	if err != nil {
		return err
	}
	defer watch.Stop()

	var cur *session
	stop := func() {
		if cur != nil {
			cur.cancel()
			<-cur.done
			cur = nil
		}
	}
	defer stop()
	refuse := func(job, format string, args ...any) {
		reason := fmt.Sprintf(format, args...)
		w.logf("es worker %s: refusing job %s: %s", w.cfg.ID, job, reason)
		w.setStatus(func(s *wire.Heartbeat) { s.Job, s.State, s.Reason = job, wire.WorkerRefused, reason })
	}
	for {
		var e jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return nil
		case e = <-watch.Updates():
		}
		if e == nil {
			continue // the end of the initial values
		}
		if e.Operation() != jetstream.KeyValuePut {
			stop()
			w.setStatus(func(s *wire.Heartbeat) { s.Job, s.State, s.Reason = "", wire.WorkerIdle, "" })
			continue
		}
		job, err := wire.ParseJob(e.Value())
		switch {
		case err != nil:
			stop()
			refuse("?", "%v", err)
			continue
		case cur != nil && cur.job.ID == job.ID && job.State == wire.JobRunning:
			continue // announced again: a coordinator resumed
		}
		stop()
		switch {
		case job.State == wire.JobDone:
			w.logf("es worker %s: job %s is done; waiting for the next", w.cfg.ID, job.ID)
			w.setStatus(func(s *wire.Heartbeat) { s.Job, s.State, s.Reason = "", wire.WorkerIdle, "" })
		case w.cfg.Job != "" && job.ID != w.cfg.Job:
			refuse(job.ID, "this worker takes job %s only (-job)", w.cfg.Job)
		default:
			s, err := w.newSession(ctx, job)
			if err != nil {
				refuse(job.ID, "%v", err)
				continue
			}
			cur = s
			w.sess.Store(s)
			go s.run()
		}
	}
}

// prepare builds what a job needs from this worker's own data and noise,
// checking each against the job's fingerprints.
func (w *Worker) prepare(spec wire.Spec) (*es.NetObjective, *es.NoiseTable, error) {
	w.dataOnce.Do(func() { w.data, w.dataErr = w.cfg.Data() })
	if w.dataErr != nil {
		return nil, nil, fmt.Errorf("this worker's training data: %v", w.dataErr)
	}
	train := w.data
	if spec.TrainExamples > train.N {
		return nil, nil, fmt.Errorf("the job trains on %d examples, this worker's data has %d: another dataset", spec.TrainExamples, train.N)
	}
	if spec.TrainExamples < train.N {
		train = train.Subset(spec.TrainExamples)
	}
	fp, ok := w.prints[spec.TrainExamples]
	if !ok {
		fp = wire.DataFingerprint(train)
		w.prints[spec.TrainExamples] = fp
	}
	if fp != spec.DataSHA256 {
		return nil, nil, fmt.Errorf("this worker's training data (SHA-256 %.12s) is not the job's (%.12s): another dataset", fp, spec.DataSHA256)
	}
	arch, _ := fpnet.ParseArch(spec.Arch) // Validate parsed both
	recipe, _ := fpnet.RecipeByName(spec.Recipe)
	if train.Dim != arch.Inputs() {
		return nil, nil, fmt.Errorf("the job's network %s takes %d inputs, this worker's images have %d", spec.Arch, arch.Inputs(), train.Dim)
	}
	obj, err := es.NewNetObjective(fpnet.NewNet(arch, recipe), train, spec.Batch, spec.BatchSeed, spec.Fitness)
	if err != nil {
		return nil, nil, err
	}
	if err := obj.SetHeldNorms(spec.HeldNorms); err != nil {
		return nil, nil, err
	}
	cfg := spec.Config
	if w.noise == nil || w.noise.Seed != cfg.NoiseSeed || len(w.noise.Values) != cfg.NoiseSize {
		need := uint64(cfg.NoiseSize)*4 + 4*12*uint64(arch.NumParams())
		if avail, ok := availableMemory(); ok && need > avail {
			return nil, nil, fmt.Errorf("the job needs about %d MiB (noise table and trainer), this machine has %d MiB available", need>>20, avail>>20)
		}
		w.noise, w.noiseHash = nil, ""
		n, err := es.NewNoiseTable(cfg.NoiseSeed, cfg.NoiseSize, 0)
		if err != nil {
			return nil, nil, err
		}
		w.noise = n
	}
	if w.noiseHash == "" {
		w.noiseHash = w.noise.SHA256()
	}
	if w.noiseHash != spec.NoiseSHA256 {
		return nil, nil, fmt.Errorf("this worker's noise table (SHA-256 %.12s) is not the job's (%.12s): its arithmetic differs", w.noiseHash, spec.NoiseSHA256)
	}
	return obj, w.noise, nil
}

// availableMemory is Linux's MemAvailable; ok is false where it is unknown.
func availableMemory() (uint64, bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}
