package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed8b67a5e0/underflow/es"
	"github.com/seed8b67a5e0/underflow/es/wire"
)

// CoordinatorConfig is what a coordinator runs.
type CoordinatorConfig struct {
	Conn *nats.Conn
	Spec wire.Spec
	// Trainer is the coordinator's own copy of θ, at the generation the run
	// continues from. It evaluates nothing but the members whose reported
	// fitness it checks (slot 0), and takes every step.
	Trainer *es.Trainer
	// Meta is the checkpoint metadata the run's checkpoints carry.
	Meta map[string]string
	// Fresh starts the job from Trainer's state, discarding whatever an
	// earlier run of the same job left on the server. Otherwise (a resumed
	// run) the coordinator continues from the latest of its own checkpoint,
	// the object store's, and the outcomes published since.
	Fresh bool
	// TaskPairs is the number of pairs per task; 0 chooses from the
	// workers' slots.
	TaskPairs int
	// AckWait is how long a task may stay unacknowledged before JetStream
	// gives it to another worker (workers report progress on long tasks).
	AckWait time.Duration
	// CheckpointEvery is how often the coordinator puts a checkpoint in the
	// object store for joining workers (at most every 20× its cost).
	CheckpointEvery time.Duration
	Logf            func(string, ...any)
}

// Coordinator runs the generations of one job over the work queue.
type Coordinator struct {
	cfg   CoordinatorConfig
	id    wire.JobID
	in    *infra
	tr    *es.Trainer
	pairs int
	logf  func(string, ...any)

	// The generation being gathered, tr.Gen.
	theta    wire.Hash    // hash of θ at tr.Gen, carried by its tasks
	have     []bool       // item i has its scores
	scores   []wire.Score // two per item (the center's second is zero)
	from     []string     // who supplied item i
	missing  int
	progress time.Time // the last time an item arrived (or tasks went out)

	job       []byte // the job's entry in the bucket
	jobWatch  jetstream.KeyWatcher
	results   jetstream.MessagesContext
	resultCh  chan jetstream.Msg
	stopped   chan struct{} // closed by Close
	resultSeq uint64        // the stream sequence of the last result read
	hbSub     *nats.Subscription

	mu       sync.Mutex
	workers  map[string]heard // heartbeats, by worker
	shares   map[string]int64 // member evaluations accepted, by worker
	accepted int64

	lastUpload  time.Time
	uploadCost  time.Duration
	uploaded    []int64 // the generations of the last two uploads
	outcomeSeqs map[int64]uint64

	bad, refused limiter
	timing       Timing
	begun        time.Time // when the current generation's θ was ready
}

// Timing says where the coordinator's time between generations goes: from
// the last result of one generation to its next generation's tasks on the
// server, while the workers wait. Durations are totals over Generations.
type Timing struct {
	Generations int64
	Outcome     time.Duration // publishing the outcome (stored by JetStream)
	Update      time.Duration // the coordinator's own step (its workers take theirs meanwhile)
	Checkpoint  time.Duration // the checkpoints put in the object store
	Begin       time.Duration // the next generation's data, offsets and θ hash
	Tasks       time.Duration // publishing the next generation's tasks
}

// PerGeneration is the mean wait between generations.
func (t Timing) PerGeneration() time.Duration {
	if t.Generations == 0 {
		return 0
	}
	return (t.Outcome + t.Update + t.Checkpoint + t.Begin + t.Tasks) / time.Duration(t.Generations)
}

type heard struct {
	hb   wire.Heartbeat
	when time.Time
}

// Coordinator's own name in the shares, for members whose reported fitness
// it replaced by its own evaluation.
const coordinatorName = "coordinator"

// NewCoordinator sets the job up on the server and publishes its first
// tasks: streams, bucket and object store, the checkpoint joining workers
// start from, the shared task consumer and the job's entry.
func NewCoordinator(ctx context.Context, cfg CoordinatorConfig) (*Coordinator, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 10 * time.Second
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 10 * time.Second
	}
	if err := cfg.Spec.Validate(); err != nil {
		return nil, fmt.Errorf("es cluster: %w", err)
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, err
	}
	c := &Coordinator{cfg: cfg, id: cfg.Spec.ID(), tr: cfg.Trainer, pairs: cfg.Trainer.Pairs(), logf: cfg.Logf,
		workers: map[string]heard{}, shares: map[string]int64{}, outcomeSeqs: map[int64]uint64{},
		resultCh: make(chan jetstream.Msg, 256)}
	if err := retry(ctx, c.logf, "es cluster: setting up the streams", func(ctx context.Context) error {
		c.in, err = createInfra(ctx, js)
		return err
	}); err != nil {
		return nil, err
	}
	if cfg.Fresh {
		if err := c.clear(ctx); err != nil {
			return nil, err
		}
	} else if err := c.catchUp(ctx); err != nil {
		return nil, err
	}
	if err := c.upload(ctx); err != nil {
		return nil, err
	}
	if err := retry(ctx, c.logf, "es cluster: task consumer", func(ctx context.Context) error {
		_, err := c.in.tasks.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable: wire.TaskConsumer(c.id), FilterSubject: wire.TaskSubject(c.id),
			AckPolicy: jetstream.AckExplicitPolicy, AckWait: cfg.AckWait, MaxAckPending: 1 << 14,
			MaxDeliver: -1, Description: "underflow ES: the tasks every worker of the job shares"})
		return err
	}); err != nil {
		return nil, err
	}
	if c.hbSub, err = cfg.Conn.Subscribe(wire.HeartbeatSubject, c.onHeartbeat); err != nil {
		return nil, err
	}
	// Results from the start of the stream: those of the current generation
	// published before a restart still count.
	rc, err := js.OrderedConsumer(ctx, wire.ResultStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{wire.ResultSubject(c.id)}})
	if err != nil {
		return nil, err
	}
	if c.results, err = rc.Messages(); err != nil {
		return nil, err
	}
	c.stopped = make(chan struct{})
	go func() {
		defer close(c.resultCh)
		for {
			m, err := c.results.Next()
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return
				}
				continue
			}
			select {
			case c.resultCh <- m:
			case <-c.stopped:
				return
			}
		}
	}()
	c.job, _ = wire.NewJob(cfg.Spec).Marshal()
	if err := c.announce(ctx); err != nil {
		return nil, err
	}
	if c.jobWatch, err = c.in.jobs.Watch(ctx, wire.JobKey, jetstream.UpdatesOnly()); err != nil {
		return nil, err
	}
	c.logf("es cluster: job %s at generation %d", c.id, c.tr.Gen)
	return c, c.beginGeneration(ctx)
}

// announce puts the job's entry in the bucket, where workers watch for it.
func (c *Coordinator) announce(ctx context.Context) error {
	return retry(ctx, c.logf, "es cluster: announcing the job", func(ctx context.Context) error {
		_, err := c.in.jobs.Put(ctx, wire.JobKey, c.job)
		return err
	})
}

// JobID is the job's name on the server.
func (c *Coordinator) JobID() wire.JobID { return c.id }

// clear removes what an earlier run of the same job left: tasks, results,
// outcomes and checkpoint.
func (c *Coordinator) clear(ctx context.Context) error {
	for _, s := range []struct {
		st      jetstream.Stream
		subject string
	}{{c.in.tasks, wire.TaskSubject(c.id)}, {c.in.results, wire.ResultSubject(c.id)}, {c.in.outcomes, wire.OutcomeSubject(c.id)}} {
		if err := retry(ctx, c.logf, "es cluster: clearing "+s.subject, func(ctx context.Context) error {
			return s.st.Purge(ctx, jetstream.WithPurgeSubject(s.subject))
		}); err != nil {
			return err
		}
	}
	if err := c.in.ckpts.Delete(ctx, c.id.String()); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

// catchUp brings a resumed coordinator to the run's latest state: the
// object store's checkpoint when it is newer than the trainer's, then every
// outcome published since (the coordinator died after publishing them).
func (c *Coordinator) catchUp(ctx context.Context) error {
	data, err := c.in.ckpts.GetBytes(ctx, c.id.String())
	switch {
	case err == nil:
		ck, err := es.ParseCheckpoint(data, "in the object store")
		if err != nil {
			c.logf("es cluster: ignoring the object store's checkpoint: %v", err)
		} else if ck.Gen > c.tr.Gen {
			if err := c.tr.Restore(ck, c.cfg.Meta); err != nil {
				return fmt.Errorf("es cluster: the object store's checkpoint: %w", err)
			}
			c.logf("es cluster: continuing from the object store's checkpoint at generation %d", ck.Gen)
		}
	case !isNotFound(err):
		return err
	}
	info, err := c.in.outcomes.Info(ctx, jetstream.WithSubjectFilter(wire.OutcomeSubject(c.id)))
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := c.in.js.OrderedConsumer(ctx, wire.OutcomeStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{wire.OutcomeSubject(c.id)}})
	if err != nil {
		return err
	}
	from := c.tr.Gen
	var applied int
	for done := false; !done; {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, _ := m.Metadata()
			if md != nil && md.Sequence.Stream >= info.State.LastSeq {
				done = true
			}
			o, err := wire.ParseOutcome(m.Data())
			if err != nil || o.Job != c.id || o.Gen != c.tr.Gen || len(o.Fitness) != c.tr.Cfg.Pop {
				continue
			}
			c.tr.Begin()
			if thetaHash(c.tr.Params) != o.Theta {
				c.logf("es cluster: an outcome of generation %d measured θ %s, not this run's: skipped", o.Gen, o.Theta.Short())
				continue
			}
			c.tr.Update(o.Fitness, es.Score(o.Center))
			if md != nil {
				c.outcomeSeqs[o.Gen] = md.Sequence.Stream
			}
			applied++
		}
		if n == 0 {
			done = true
		}
	}
	if applied > 0 {
		c.logf("es cluster: replayed %d published outcomes, generations %d to %d", applied, from, c.tr.Gen-1)
	}
	return nil
}

// beginGeneration prepares the trainer's generation and publishes its tasks.
func (c *Coordinator) beginGeneration(ctx context.Context) error {
	c.tr.Begin()
	c.theta = thetaHash(c.tr.Params)
	c.begun = time.Now()
	items := c.pairs + 1
	if len(c.have) != items {
		c.have, c.scores, c.from = make([]bool, items), make([]wire.Score, 2*items), make([]string, items)
	}
	clear(c.have)
	c.missing = items
	c.progress = time.Now()
	return c.publishTasks(ctx, 0, items)
}

// taskItems is the number of items per task: the configured pairs, or
// enough tasks for about eight per evaluation slot the workers announce, so
// the last task of a generation is short beside the whole.
func (c *Coordinator) taskItems() int {
	if c.cfg.TaskPairs > 0 {
		return min(c.cfg.TaskPairs, wire.MaxTaskItems)
	}
	_, slots := c.Workers()
	return min(max(1, (c.pairs+1+8*max(slots, 1)-1)/(8*max(slots, 1))), wire.MaxTaskItems)
}

// publishTasks publishes tasks for the items [lo, hi) of the generation.
func (c *Coordinator) publishTasks(ctx context.Context, lo, hi int) error {
	k := c.taskItems()
	subject := wire.TaskSubject(c.id)
	var futures []jetstream.PubAckFuture
	var failed [][]byte
	for i := lo; i < hi; i += k {
		data := wire.AppendTask(nil, wire.Task{Job: c.id, Gen: c.tr.Gen, Lo: i, Hi: min(i+k, hi), Theta: c.theta})
		f, err := c.in.js.PublishAsync(subject, data)
		if err != nil {
			failed = append(failed, data)
			continue
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case <-f.Err():
			failed = append(failed, f.Msg().Data)
		case <-time.After(10 * time.Second):
			failed = append(failed, f.Msg().Data)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, data := range failed {
		if err := retry(ctx, c.logf, "es cluster: publishing a task", func(ctx context.Context) error {
			_, err := c.in.js.Publish(ctx, subject, data)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// Step gathers the current generation's fitness from the workers, publishes
// the outcome, takes the step and publishes the next generation's tasks.
func (c *Coordinator) Step(ctx context.Context) (es.Stats, error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for c.missing > 0 {
		select {
		case m, ok := <-c.resultCh:
			if !ok {
				return es.Stats{}, errors.New("es cluster: the result stream closed")
			}
			c.onResult(m)
		case <-tick.C:
			if err := c.checkStall(ctx); err != nil {
				return es.Stats{}, err
			}
		case e := <-c.jobWatch.Updates():
			if e == nil || string(e.Value()) == string(c.job) {
				continue
			}
			// Another coordinator's job on this server: one server runs one
			// job at a time, and two would take each other's workers.
			if other, err := wire.ParseJob(e.Value()); err == nil && other.ID != c.id.String() && other.State == wire.JobRunning {
				return es.Stats{}, fmt.Errorf("es cluster: another coordinator announced job %s on this server; a server runs one job at a time (give each run its own -serve address or NATS server)", other.ID)
			}
			// A forged or damaged entry: this run is still the job.
			c.bad.logf(c.logf, "es cluster: the job's entry was overwritten (%d bytes); announcing job %s again", len(e.Value()), c.id)
			if err := c.announce(ctx); err != nil {
				return es.Stats{}, err
			}
		case <-ctx.Done():
			return es.Stats{}, ctx.Err()
		}
	}
	t0 := time.Now()
	o := wire.Outcome{Job: c.id, Gen: c.tr.Gen, Theta: c.theta, Center: c.scores[2*c.pairs],
		Fitness: make([]float64, 2*c.pairs)}
	for i := range o.Fitness {
		o.Fitness[i] = c.scores[i].Fitness
	}
	data := wire.AppendOutcome(nil, o)
	msgID := fmt.Sprintf("%s.%d", c.id, o.Gen) // a retried publish is stored once
	if err := retry(ctx, c.logf, "es cluster: publishing an outcome", func(ctx context.Context) error {
		ack, err := c.in.js.Publish(ctx, wire.OutcomeSubject(c.id), data, jetstream.WithMsgID(msgID))
		if err == nil {
			c.outcomeSeqs[o.Gen] = ack.Sequence
		}
		return err
	}); err != nil {
		return es.Stats{}, err
	}
	t1 := time.Now()
	st := c.tr.Update(o.Fitness, es.Score(o.Center))
	t2 := time.Now()
	if err := c.maybeUpload(ctx); err != nil {
		return st, err
	}
	t3 := time.Now()
	err := c.beginGeneration(ctx)
	c.timing.Generations++
	c.timing.Outcome += t1.Sub(t0)
	c.timing.Update += t2.Sub(t1)
	c.timing.Checkpoint += t3.Sub(t2)
	c.timing.Begin += c.begun.Sub(t3)
	c.timing.Tasks += time.Since(c.begun)
	return st, err
}

// Timing reports where the time between generations went so far.
func (c *Coordinator) Timing() Timing { return c.timing }

// onResult checks a result and takes the items it brings that are still
// missing. Nothing a message says can panic the coordinator or reach θ
// unchecked: a result for another job, another generation or another θ is
// dropped, and a non-finite fitness or two results that disagree are
// settled by the coordinator's own evaluation.
func (c *Coordinator) onResult(m jetstream.Msg) {
	if md, err := m.Metadata(); err == nil {
		c.resultSeq = md.Sequence.Stream
	}
	r, err := wire.ParseResult(m.Data())
	switch {
	case err != nil:
		c.bad.logf(c.logf, "es cluster: dropped a result: %v", err)
		return
	case r.Job != c.id:
		c.refused.logf(c.logf, "es cluster: dropped a result of worker %s for job %s: this run is job %s", r.Worker, r.Job, c.id)
		return
	case r.Gen < c.tr.Gen: // late: a redelivered or slow task of a finished generation
		return
	case r.Gen > c.tr.Gen:
		c.bad.logf(c.logf, "es cluster: dropped a result of worker %s for generation %d: the run is at %d", r.Worker, r.Gen, c.tr.Gen)
		return
	case r.Hi > c.pairs+1:
		c.bad.logf(c.logf, "es cluster: dropped a result of worker %s for items [%d, %d): generation %d has %d pairs and the center", r.Worker, r.Lo, r.Hi, r.Gen, c.pairs)
		return
	case r.Theta != c.theta:
		c.bad.logf(c.logf, "es cluster: dropped a result of worker %s: it evaluated generation %d at θ %s, the run's is %s", r.Worker, r.Gen, r.Theta.Short(), c.theta.Short())
		return
	case r.Hi == c.pairs+1 && r.Scores[len(r.Scores)-1] != (wire.Score{}):
		c.bad.logf(c.logf, "es cluster: dropped a result of worker %s: the center has a second score", r.Worker)
		return
	}
	for i := r.Lo; i < r.Hi; i++ {
		c.offer(i, r.Scores[2*(i-r.Lo):2*(i-r.Lo)+2], r.Worker)
	}
}

// offer takes item i's scores from worker, unless it has them already.
func (c *Coordinator) offer(i int, got []wire.Score, worker string) {
	have := c.scores[2*i : 2*i+2]
	if c.have[i] {
		if sameBits(have, got) {
			return // a task done twice
		}
		exact := c.exact(i)
		c.bad.logf(c.logf, "es cluster: ERROR: generation %d, item %d: worker %s sent %v, %s sent %v; the exact value is %v",
			c.tr.Gen, i, worker, got, c.from[i], have, exact)
		if !sameBits(have, exact) {
			c.credit(c.from[i], -members(i, c.pairs))
			copy(have, exact)
			c.from[i] = coordinatorName
			c.credit(coordinatorName, members(i, c.pairs))
		}
		return
	}
	if !finite(got) {
		// The network never gives a non-finite fitness when it works: check.
		if exact := c.exact(i); !sameBits(exact, got) {
			c.bad.logf(c.logf, "es cluster: replaced worker %s's %v for item %d of generation %d by the exact %v", worker, got, i, c.tr.Gen, exact)
			got, worker = exact, coordinatorName
		}
	}
	copy(have, got)
	c.have[i], c.from[i] = true, worker
	c.missing--
	c.progress = time.Now()
	c.credit(worker, members(i, c.pairs))
}

// exact evaluates item i on the coordinator's own slot 0.
func (c *Coordinator) exact(i int) []wire.Score {
	if i == c.pairs {
		return []wire.Score{wire.Score(c.tr.EvaluateCenter(0)), {}}
	}
	plus, minus := c.tr.EvaluatePair(0, i)
	return []wire.Score{wire.Score(plus), wire.Score(minus)}
}

func members(i, pairs int) int64 {
	if i == pairs {
		return 1
	}
	return 2
}

func (c *Coordinator) credit(worker string, n int64) {
	c.mu.Lock()
	c.shares[worker] += n
	c.accepted += n
	c.mu.Unlock()
}

func sameBits(a, b []wire.Score) bool {
	for i := range a {
		if math.Float64bits(a[i].Fitness) != math.Float64bits(b[i].Fitness) ||
			math.Float64bits(a[i].Accuracy) != math.Float64bits(b[i].Accuracy) {
			return false
		}
	}
	return true
}

func finite(s []wire.Score) bool {
	for _, v := range s {
		if math.IsNaN(v.Fitness) || math.IsInf(v.Fitness, 0) {
			return false
		}
	}
	return true
}

// checkStall republishes the missing items' tasks when nothing has arrived
// for longer than a task may stay unacknowledged and no task of the job is
// left on the server (a task lost with a server, for example). A worker
// that holds a task past the ack wait loses it to JetStream's redelivery,
// not to this.
func (c *Coordinator) checkStall(ctx context.Context) error {
	if time.Since(c.progress) < c.cfg.AckWait+2*time.Second {
		return nil
	}
	var info *jetstream.ConsumerInfo
	if err := retry(ctx, c.logf, "es cluster: task consumer", func(ctx context.Context) error {
		cons, err := c.in.js.Consumer(ctx, wire.TaskStream, wire.TaskConsumer(c.id))
		if err == nil {
			info, err = cons.Info(ctx)
		}
		return err
	}); err != nil {
		return err
	}
	connected, slots := c.Workers()
	if info.NumPending+uint64(info.NumAckPending) > 0 {
		c.logf("es cluster: generation %d waits for %d of %d items; %d tasks queued, %d taken; %d workers (%d slots) connected",
			c.tr.Gen, c.missing, c.pairs+1, info.NumPending, info.NumAckPending, connected, slots)
		c.progress = time.Now()
		return nil
	}
	c.logf("es cluster: generation %d: %d items missing and no task left on the server: publishing them again", c.tr.Gen, c.missing)
	c.progress = time.Now()
	for i := 0; i <= c.pairs; {
		if c.have[i] {
			i++
			continue
		}
		j := i
		for j <= c.pairs && !c.have[j] {
			j++
		}
		if err := c.publishTasks(ctx, i, j); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// onHeartbeat notes what a worker says about itself.
func (c *Coordinator) onHeartbeat(m *nats.Msg) {
	hb, err := wire.ParseHeartbeat(m.Data)
	if err != nil {
		c.bad.logf(c.logf, "es cluster: dropped a heartbeat: %v", err)
		return
	}
	c.mu.Lock()
	old, seen := c.workers[hb.Worker]
	c.workers[hb.Worker] = heard{hb: hb, when: time.Now()}
	c.mu.Unlock()
	if hb.Job == c.id.String() && (!seen || old.hb.State != hb.State || old.hb.Job != hb.Job) {
		switch hb.State {
		case wire.WorkerRefused:
			c.logf("es cluster: worker %s refused the job: %s", hb.Worker, hb.Reason)
		case wire.WorkerReady:
			c.logf("es cluster: worker %s joined: %d slots, %s/%s, backend %s, at generation %d", hb.Worker, hb.Slots, hb.GOOS, hb.GOARCH, hb.Backend, hb.Gen)
		}
	}
}

// heartbeatFresh is how long a heartbeat counts a worker as connected.
const heartbeatFresh = 3 * time.Second

// Workers reports the workers evaluating this job now (a heartbeat in the
// last three seconds) and their evaluation slots.
func (c *Coordinator) Workers() (workers, slots int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.workers {
		if h.hb.Job == c.id.String() && h.hb.State == wire.WorkerReady && time.Since(h.when) < heartbeatFresh {
			workers++
			slots += h.hb.Slots
		}
	}
	return workers, slots
}

// Share is one worker's part of the evaluations this coordinator accepted.
type Share struct {
	Worker      string  `json:"worker"`
	Evaluations int64   `json:"evaluations"`
	Fraction    float64 `json:"fraction"`
	Backend     string  `json:"backend,omitempty"`
	GOARCH      string  `json:"goarch,omitempty"`
}

// Shares lists, by worker, the member evaluations accepted so far in this
// process, largest first.
func (c *Coordinator) Shares() []Share {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Share
	for w, n := range c.shares {
		if n == 0 {
			continue
		}
		s := Share{Worker: w, Evaluations: n, Fraction: float64(n) / float64(max(c.accepted, 1))}
		if h, ok := c.workers[w]; ok {
			s.Backend, s.GOARCH = h.hb.Backend, h.hb.GOARCH
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Evaluations != out[j].Evaluations {
			return out[i].Evaluations > out[j].Evaluations
		}
		return out[i].Worker < out[j].Worker
	})
	return out
}

// maybeUpload puts a checkpoint in the object store when one is due: every
// CheckpointEvery, and at most every 20× what the last one cost.
func (c *Coordinator) maybeUpload(ctx context.Context) error {
	if time.Since(c.lastUpload) < max(c.cfg.CheckpointEvery, 20*c.uploadCost) {
		return nil
	}
	return c.upload(ctx)
}

// upload puts the trainer's state in the object store, where joining and
// resynchronising workers start, then drops the outcomes and results no one
// needs any more: outcomes from before the previous checkpoint (a worker
// may still be reading it) and results of finished generations.
func (c *Coordinator) upload(ctx context.Context) error {
	t := time.Now()
	data, err := c.tr.Checkpoint(c.cfg.Meta).MarshalBinary()
	if err != nil {
		return err
	}
	if err := retry(ctx, c.logf, "es cluster: checkpoint to the object store", func(ctx context.Context) error {
		_, err := c.in.ckpts.PutBytes(ctx, c.id.String(), data)
		return err
	}); err != nil {
		return err
	}
	c.uploaded = append(c.uploaded, c.tr.Gen)
	if len(c.uploaded) > 2 {
		c.uploaded = c.uploaded[len(c.uploaded)-2:]
	}
	if seq, ok := c.outcomeSeqs[c.uploaded[0]]; ok && len(c.uploaded) == 2 {
		if err := c.in.outcomes.Purge(ctx, jetstream.WithPurgeSubject(wire.OutcomeSubject(c.id)), jetstream.WithPurgeSequence(seq)); err != nil {
			c.logf("es cluster: trimming the outcomes: %v", err)
		}
		for g := range c.outcomeSeqs {
			if g < c.uploaded[0] {
				delete(c.outcomeSeqs, g)
			}
		}
	}
	if c.resultSeq > 0 {
		if err := c.in.results.Purge(ctx, jetstream.WithPurgeSubject(wire.ResultSubject(c.id)), jetstream.WithPurgeSequence(c.resultSeq+1)); err != nil {
			c.logf("es cluster: trimming the results: %v", err)
		}
	}
	c.lastUpload, c.uploadCost = time.Now(), time.Since(t)
	return nil
}

// Close stops the coordinator. When the run is finished (done), it marks
// the job done, so its workers go idle, and clears the job from the server;
// otherwise the job stays as it is, for a resumed coordinator and the
// workers that wait for it.
func (c *Coordinator) Close(ctx context.Context, done bool) error {
	if c.results != nil {
		close(c.stopped)
		c.results.Stop()
	}
	if c.jobWatch != nil {
		c.jobWatch.Stop()
	}
	if c.hbSub != nil {
		c.hbSub.Unsubscribe()
	}
	if !done {
		return c.upload(ctx)
	}
	j := wire.NewJob(c.cfg.Spec)
	j.State = wire.JobDone
	b, _ := j.Marshal()
	if _, err := c.in.jobs.Put(ctx, wire.JobKey, b); err != nil {
		return err
	}
	if err := c.in.tasks.DeleteConsumer(ctx, wire.TaskConsumer(c.id)); err != nil && !isNotFound(err) {
		return err
	}
	return c.clear(ctx)
}
