package cluster

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/seed8b67a5e0/underflow/es"
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
	cfg.Guide = j.guide
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
	for _, job := range []tinyJob{{}, {guide: 0.5}} {
		want := job.reference(t, gens)
		_, url := startServer(t, t.TempDir())
		stop := startWorkers(t, url, 1, 2)
		tr, obj, start := job.trainer(t, 1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		c, err := NewCoordinator(ctx, CoordinatorConfig{Conn: connect(t, url, "coordinator"), Spec: NewSpec(tr, obj, start),
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
			t.Fatalf("guide %v, backend %s: the cluster gives %s, one process %s", job.guide, kernels.Backend(), got, want)
		}
		t.Logf("guide %v: %s; shares %+v", job.guide, want, c.Shares())
	}
}
