package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed8b67a5e0/underflow/es"
	"github.com/seed8b67a5e0/underflow/es/wire"
)

// session is a worker's part in one job: its own trainer, kept at the
// job's θ by the outcomes, and one goroutine per slot taking tasks.
type session struct {
	w      *Worker
	job    wire.Job
	id     wire.JobID
	in     *infra
	tr     *es.Trainer
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// mu guards the trainer's state, theta and ready: evaluations hold it
	// shared, a step or a resynchronisation exclusively.
	mu      sync.RWMutex
	theta   wire.Hash      // hash of θ at tr.Gen
	ready   bool           // θ came from a checkpoint and outcomes
	changed chan struct{}  // closed and replaced when tr.Gen or ready change
	resync  chan wire.Task // a task of tr.Gen came with another θ

	bad limiter
}

func (w *Worker) newSession(ctx context.Context, job wire.Job) (*session, error) {
	w.setStatus(func(s *wire.Heartbeat) { s.Job, s.State, s.Reason, s.Gen = job.ID, wire.WorkerSyncing, "", 0 })
	w.logf("es worker %s: job %s: %s %s, pop %d, batch %d; preparing", w.cfg.ID, job.ID, job.Spec.Arch, job.Spec.Recipe, job.Spec.Config.Pop, job.Spec.Batch)
	obj, noise, err := w.prepare(job.Spec)
	if err != nil {
		return nil, err
	}
	cfg := job.Spec.Config
	cfg.Workers = w.cfg.Slots
	tr, err := es.NewTrainer(cfg, obj, noise, make([]float32, obj.Dim()))
	if err != nil {
		return nil, err
	}
	id, _ := job.JobID()
	s := &session{w: w, job: job, id: id, tr: tr, done: make(chan struct{}),
		changed: make(chan struct{}), resync: make(chan wire.Task, 1)}
	s.ctx, s.cancel = context.WithCancel(ctx)
	return s, nil
}

// notify wakes the slots waiting for a generation; mu is held.
func (s *session) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
	gen, ready := s.tr.Gen, s.ready
	s.w.setStatus(func(h *wire.Heartbeat) {
		h.Gen = gen
		if ready {
			h.State = wire.WorkerReady
		} else {
			h.State = wire.WorkerSyncing
		}
	})
}

func (s *session) logf(format string, args ...any) {
	s.w.logf("es worker %s: "+format, append([]any{s.w.cfg.ID}, args...)...)
}

// run follows the job until the session is cancelled.
func (s *session) run() {
	defer close(s.done)
	if err := retry(s.ctx, s.logf, "opening the job's streams", func(ctx context.Context) error {
		var err error
		s.in, err = openInfra(ctx, s.w.js)
		return err
	}); err != nil {
		return
	}
	if !s.restore() {
		return
	}
	slots := make(chan struct{})
	for slot := 0; slot < s.tr.Slots(); slot++ {
		go func() {
			defer func() { slots <- struct{}{} }()
			s.takeTasks(slot)
		}()
	}
	for wait := time.Second; s.ctx.Err() == nil; wait = min(2*wait, 30*time.Second) {
		if s.follow() {
			wait = time.Second // it followed the job for a while
		}
		if s.ctx.Err() != nil {
			break
		}
		select {
		case <-s.ctx.Done():
		case <-time.After(wait / 4):
		}
		s.restore()
	}
	for range s.tr.Slots() {
		<-slots
	}
}

// restore loads the job's latest checkpoint from the object store. It waits
// for one to exist; it reports false when the session ended first.
func (s *session) restore() bool {
	var ck *es.Checkpoint
	err := retry(s.ctx, s.logf, "fetching the job's checkpoint", func(ctx context.Context) error {
		data, err := s.in.ckpts.GetBytes(ctx, s.id.String())
		if err != nil {
			return err
		}
		ck, err = es.ParseCheckpoint(data, "in the object store")
		return err
	})
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready = false
	if err := s.tr.Restore(ck, nil); err != nil {
		s.logf("the job's checkpoint: %v", err)
		s.notify()
		return false
	}
	s.tr.Begin()
	s.theta = thetaHash(s.tr.Params)
	s.ready = true
	s.notify()
	s.logf("job %s: at generation %d from the object store's checkpoint", s.id, s.tr.Gen)
	return true
}

// follow applies the job's outcomes, from the first one stored, until it
// finds that this worker's θ left the job's: it missed outcomes (they were
// trimmed, or it skipped one whose θ was not its own and the run moved on),
// or a slot saw a task of this generation at another θ. It returns true if
// it applied at least one outcome.
func (s *session) follow() (progressed bool) {
	cons, err := s.in.js.OrderedConsumer(s.ctx, wire.OutcomeStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{wire.OutcomeSubject(s.id)}})
	if err != nil {
		return false
	}
	it, err := cons.Messages()
	if err != nil {
		return false
	}
	msgs := make(chan jetstream.Msg)
	go func() {
		defer close(msgs)
		for {
			m, err := it.Next()
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			if err == nil {
				select {
				case msgs <- m:
				case <-s.ctx.Done():
					return
				}
			}
		}
	}()
	defer func() {
		it.Stop()
		for range msgs { // let the pump end
		}
	}()
	for {
		var m jetstream.Msg
		select {
		case <-s.ctx.Done():
			return progressed
		case t := <-s.resync:
			s.mu.RLock()
			cur, theta := s.tr.Gen, s.theta
			s.mu.RUnlock()
			switch {
			case t.Gen == cur && t.Theta != theta:
				s.logf("generation %d's tasks ask for θ %s, this worker's is %s: it stops evaluating and resynchronises", t.Gen, t.Theta.Short(), theta.Short())
				return progressed
			case t.Gen > cur:
				s.logf("the job's tasks are at generation %d, this worker is stuck at %d with θ %s: it resynchronises", t.Gen, cur, theta.Short())
				return progressed
			}
			continue
		case mm, ok := <-msgs:
			if !ok {
				return progressed // the iterator ended: the connection closed
			}
			m = mm
		}
		o, err := wire.ParseOutcome(m.Data())
		if err != nil {
			s.bad.logf(s.logf, "dropped an outcome: %v", err)
			continue
		}
		s.mu.Lock()
		g := s.tr.Gen
		switch {
		case o.Job != s.id:
			s.mu.Unlock()
			s.bad.logf(s.logf, "dropped an outcome of job %s on job %s's subject", o.Job, s.id)
			continue
		case o.Gen < g:
			s.mu.Unlock()
			continue
		case o.Gen > g:
			s.mu.Unlock()
			s.logf("the job is at generation %d, this worker at %d with θ %s: it resynchronises", o.Gen, g, s.theta.Short())
			return progressed
		case len(o.Fitness) != s.tr.Cfg.Pop:
			s.mu.Unlock()
			s.bad.logf(s.logf, "dropped an outcome of generation %d with %d fitness values: the population is %d", o.Gen, len(o.Fitness), s.tr.Cfg.Pop)
			continue
		case o.Theta != s.theta:
			s.mu.Unlock()
			s.bad.logf(s.logf, "skipped an outcome of generation %d measured at θ %s; this worker's is %s (a forged message, or this worker diverged: then the next generation shows it)", o.Gen, o.Theta.Short(), s.theta.Short())
			continue
		}
		s.tr.Update(o.Fitness, es.Score(o.Center))
		s.tr.Begin()
		s.theta = thetaHash(s.tr.Params)
		s.notify()
		s.mu.Unlock()
		progressed = true
	}
}

// takeTasks is one slot: it takes the job's tasks one at a time, evaluates
// them at this worker's θ and publishes the results.
func (s *session) takeTasks(slot int) {
	var cons jetstream.Consumer
	if err := retry(s.ctx, s.logf, "opening the task consumer", func(ctx context.Context) error {
		var err error
		cons, err = s.in.js.Consumer(ctx, wire.TaskStream, wire.TaskConsumer(s.id))
		return err
	}); err != nil {
		return
	}
	ackWait := cons.CachedInfo().Config.AckWait
	for s.ctx.Err() == nil {
		m, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if !errors.Is(err, nats.ErrTimeout) && s.ctx.Err() == nil {
				s.bad.logf(s.logf, "taking a task: %v", err)
				select {
				case <-s.ctx.Done():
				case <-time.After(time.Second):
				}
			}
			continue
		}
		s.handle(slot, m, ackWait)
	}
}

// handle evaluates one task, or hands it back: to be redelivered when this
// worker cannot do it yet, acknowledged and dropped when its generation is
// over, terminated when it is not a task of this job.
func (s *session) handle(slot int, m jetstream.Msg, ackWait time.Duration) {
	t, err := wire.ParseTask(m.Data())
	if err != nil || t.Job != s.id {
		if err == nil {
			err = fmt.Errorf("a task of job %s on job %s's subject", t.Job, s.id)
		}
		s.bad.logf(s.logf, "dropped a task: %v", err)
		m.Term()
		return
	}
	deadline := time.Now().Add(min(ackWait/2, 5*time.Second))
	for {
		s.mu.RLock()
		if s.ready && s.tr.Gen == t.Gen {
			break // holding the shared lock
		}
		over := s.ready && s.tr.Gen > t.Gen
		changed := s.changed
		s.mu.RUnlock()
		if over {
			m.Ack()
			return
		}
		select {
		case <-changed:
		case <-time.After(time.Until(deadline)):
			m.NakWithDelay(time.Second) // another worker may be ready
			// The job has moved past this worker's generation, and the
			// outcome that would bring it there is not coming: it skipped it
			// (its θ was not the outcome's), or missed it.
			select {
			case s.resync <- t:
			default:
			}
			return
		case <-s.ctx.Done():
			m.Nak()
			return
		}
	}
	pairs := s.tr.Pairs()
	switch {
	case t.Theta != s.theta:
		s.mu.RUnlock()
		m.Nak()
		select {
		case s.resync <- t:
		default:
		}
		return
	case t.Hi > pairs+1:
		s.mu.RUnlock()
		s.bad.logf(s.logf, "dropped a task for items [%d, %d): the job has %d pairs and the center", t.Lo, t.Hi, pairs)
		m.Term()
		return
	}
	stop := keepInProgress(m, ackWait)
	r := wire.Result{Job: s.id, Gen: t.Gen, Lo: t.Lo, Hi: t.Hi, Theta: s.theta, Worker: s.w.cfg.ID,
		Scores: make([]wire.Score, 0, 2*(t.Hi-t.Lo))}
	members := 0
	for i := t.Lo; i < t.Hi; i++ {
		if i == pairs {
			r.Scores = append(r.Scores, wire.Score(s.tr.EvaluateCenter(slot)), wire.Score{})
			members++
			continue
		}
		plus, minus := s.tr.EvaluatePair(slot, i)
		r.Scores = append(r.Scores, wire.Score(plus), wire.Score(minus))
		members += 2
	}
	s.mu.RUnlock()
	defer stop()
	data := wire.AppendResult(nil, r)
	if err := retry(s.ctx, s.logf, "publishing a result", func(ctx context.Context) error {
		_, err := s.in.js.Publish(ctx, wire.ResultSubject(s.id), data)
		return err
	}); err != nil {
		m.Nak() // leaving: another worker takes it now rather than after the ack wait
		return
	}
	m.Ack()
	s.w.evals.Add(int64(members))
}

// keepInProgress tells JetStream, every third of the ack wait, that the
// task is still being worked on, until the returned stop is called.
func keepInProgress(m jetstream.Msg, ackWait time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(max(ackWait/3, 100*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				m.InProgress()
			}
		}
	}()
	return func() { close(done) }
}
