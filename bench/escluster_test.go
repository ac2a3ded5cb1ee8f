package bench_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/seed8b67a5e0/underflow/es/cluster"
	"github.com/seed8b67a5e0/underflow/fpnet"
)

// ES across processes against ES in one process, on this machine: the
// article's 784-512-512-10 network, population 200, batch 100.
//
//	go test -run '^$' -bench ESCluster -benchtime 20x -count 5 ./bench
//
// one-process is es.Trainer with both cores (cmd/train -method es
// -workers 2). cluster is what `cmd/train -method es -workers 0 -serve`
// does, in this process (a NATS server with JetStream embedded, the
// coordinator), with two esworker processes of one goroutine each. Both
// report generations/s and member-samples/s; cluster also reports the
// coordination per generation: from the last result of a generation to its
// successor's tasks on the server (cluster.Timing), of which the
// coordinator's own update is the largest part.
// With -count N each runs N times in one go test run, so their ratio comes
// from one run.

var esCluster struct {
	once   sync.Once
	worker string
	err    error
}

// esworkerBinary builds cmd/esworker once.
func esworkerBinary(b *testing.B) string {
	esCluster.once.Do(func() {
		dir, err := os.MkdirTemp("", "bench-esworker-")
		if err != nil {
			esCluster.err = err
			return
		}
		esCluster.worker = filepath.Join(dir, "esworker")
		if out, err := exec.Command("go", "build", "-o", esCluster.worker, "../cmd/esworker").CombinedOutput(); err != nil {
			esCluster.err = fmt.Errorf("go build ../cmd/esworker: %v\n%s", err, out)
		}
	})
	if esCluster.err != nil {
		b.Fatal(esCluster.err)
	}
	return esCluster.worker
}

// workerTraffic is the bytes the server received from and sent to the
// esworker connections so far (NATS protocol included).
func workerTraffic(b *testing.B, ns *server.Server) (fromWorkers, toWorkers int64) {
	cz, err := ns.Connz(&server.ConnzOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, ci := range cz.Conns {
		if ci.Name == "underflow esworker" {
			fromWorkers += ci.InBytes
			toWorkers += ci.OutBytes
		}
	}
	return fromWorkers, toWorkers
}

func BenchmarkESCluster(b *testing.B) {
	const pop, batch = 200, 100
	report := func(b *testing.B) {
		sec := b.Elapsed().Seconds()
		b.ReportMetric(float64(b.N)/sec, "generations/s")
		b.ReportMetric(float64(pop*batch*b.N)/sec, "member-samples/s")
	}
	b.Run("one-process", func(b *testing.B) {
		tr, _, _ := articleESTrainer(b, runtime.GOMAXPROCS(0), 0)
		tr.Step()
		b.ResetTimer()
		for range b.N {
			tr.Step()
		}
		report(b)
	})
	b.Run("cluster-2x1", func(b *testing.B) {
		worker := esworkerBinary(b)
		ns, err := cluster.StartServer(cluster.ServerConfig{Addr: "127.0.0.1:-1", StoreDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		defer ns.Shutdown()
		url := cluster.ClientURL(ns, cluster.Security{})
		nc, err := cluster.Connect(url, cluster.Security{}, "bench coordinator", b.Logf)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		tr, obj, start := articleESTrainer(b, runtime.GOMAXPROCS(0), 0)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		c, err := cluster.NewCoordinator(ctx, cluster.CoordinatorConfig{Conn: nc, Spec: cluster.NewSpec(tr, obj, fpnet.ParamsSHA256(start)),
			Trainer: tr, Fresh: true, CheckpointEvery: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		for i := range 2 {
			cmd := exec.Command(worker, "-nats", url, "-workers", "1", "-id", fmt.Sprintf("bench-%d", i), "-q")
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
		}
		// Warm up until both workers evaluate (they load MNIST and build the
		// noise table first).
		for n, _ := c.Workers(); n < 2; n, _ = c.Workers() {
			if _, err := c.Step(ctx); err != nil {
				b.Fatal(err)
			}
		}
		for range 2 {
			c.Step(ctx)
		}
		before := c.Timing()
		in0, out0 := workerTraffic(b, ns)
		b.ResetTimer()
		for range b.N {
			if _, err := c.Step(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		report(b)
		in1, out1 := workerTraffic(b, ns)
		b.ReportMetric(float64(in1-in0)/float64(2*b.N), "worker-sent-B/gen")
		b.ReportMetric(float64(out1-out0)/float64(2*b.N), "worker-received-B/gen")
		t := c.Timing()
		gens := float64(t.Generations - before.Generations)
		ms := func(d, d0 time.Duration) float64 { return float64(d-d0) / gens / 1e6 }
		b.ReportMetric(ms(t.Outcome+t.Update+t.Checkpoint+t.Begin+t.Tasks, before.Outcome+before.Update+before.Checkpoint+before.Begin+before.Tasks), "coord-ms/gen")
		b.ReportMetric(ms(t.Update, before.Update), "coord-update-ms/gen")
		b.ReportMetric(ms(t.Outcome+t.Tasks, before.Outcome+before.Tasks), "coord-publish-ms/gen")
		c.Close(ctx, true)
	})
}
