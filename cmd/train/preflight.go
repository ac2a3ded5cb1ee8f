package main

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/seed8b67a5e0/underflow/es/cluster"
	"github.com/seed8b67a5e0/underflow/fpnet"
)

// checkSurroundings checks what the options name outside themselves, before
// anything is created: the run folders, the cluster's secrets and address,
// and whether the run fits in memory. It reads, and writes nothing.
func (o *Options) checkSurroundings() error {
	m, _ := lookupMethod(o.Method)
	if o.Resume != "" {
		ck := filepath.Join(o.Resume, m.Checkpoint)
		if _, err := os.Stat(ck); errors.Is(err, os.ErrNotExist) {
			return badFlag("-resume %s: no checkpoint was ever written there (no %s: the run stopped before its first), so there is nothing to resume; start the run again with its flags and -out %s",
				o.Resume, m.Checkpoint, o.Resume)
		} else if err != nil {
			return badFlag("-resume %s: %v", o.Resume, err)
		}
	}
	if o.Out != "" && (o.Resume == "" || filepath.Clean(o.Out) != filepath.Clean(o.Resume)) {
		if err := checkNewRunFolder(o.Out, o.Resume != ""); err != nil {
			return err
		}
	}
	if o.Distributed() {
		sec, err := o.natsSecurity()
		if err != nil {
			return badFlag("%v", err)
		}
		if o.Serve != "" {
			host, port, err := cluster.CheckServe(o.Serve, sec)
			if err != nil {
				return badFlag("%v", err)
			}
			if port == 0 {
				port = 4222 // nats-server's convention (CheckServe); -1 is any free port
			}
			if port > 0 { // a port that is taken is found now, not after the run folder exists
				l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
				if err != nil {
					return badFlag("-serve %s: %v", o.Serve, err)
				}
				l.Close()
			}
		}
	}
	arch, _ := fpnet.ParseArch(o.Arch) // validate parsed it
	return checkMemory(m, o, arch)
}

// runFiles are the files whose presence means a folder holds a run whose
// results or progress would be lost by starting another there.
func runFiles() []string {
	files := []string{"summary.json", "model.safetensors"}
	for _, n := range sortedMethodNames() {
		if c := methods[n].Checkpoint; c != "" {
			files = append(files, c)
		}
	}
	return files
}

// checkNewRunFolder refuses an -out folder that cannot take a new run: a
// file, or a folder that already holds a run (which -resume continues).
func checkNewRunFolder(dir string, resuming bool) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return badFlag("-out %s: %v", dir, err)
	case !st.IsDir():
		return badFlag("-out %s: not a folder", dir)
	}
	for _, f := range runFiles() {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			hint := fmt.Sprintf("continue it with -resume %s, or choose another -out", dir)
			if resuming {
				hint = "choose another -out"
			}
			return badFlag("-out %s already holds a run (%s): %s", dir, f, hint)
		}
	}
	return nil
}

// A memoryUse is one part of a run's memory: bytes, and what they hold.
type memoryUse struct {
	bytes float64
	what  string
}

// checkMemory refuses a run whose memory, estimated from the options
// (a lower bound), exceeds what this machine or its cgroup has: allocating
// it would end in the runtime's "out of memory" trace, or a makeslice
// panic, possibly after hours of training.
func checkMemory(m *Method, o *Options, arch fpnet.Arch) error {
	if m.Memory == nil {
		return nil
	}
	uses := m.Memory(o, arch)
	var need float64
	parts := make([]string, 0, len(uses))
	for _, u := range uses {
		need += u.bytes
		parts = append(parts, fmt.Sprintf("%s %s", fmtBytes(u.bytes), u.what))
	}
	limit, source := memoryLimit()
	if need > float64(limit) {
		return badFlag("this run needs at least %s of memory (%s), more than %s %s", fmtBytes(need), strings.Join(parts, ", "), source, fmtBytes(float64(limit)))
	}
	return nil
}

// noLimit stands for a machine whose memory is unknown: no allocation
// beyond 2^48 bytes (256 TiB) can succeed on any machine Go runs on.
const noLimit = 1 << 48

// memoryLimit is the most memory this process can have: the machine's
// (Linux's MemTotal) or its cgroup's limit, whichever is smaller.
func memoryLimit() (bytes uint64, source string) {
	bytes, source = noLimit, "the address space holds"
	if runtime.GOOS != "linux" {
		return bytes, source
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) >= 2 && fields[0] == "MemTotal:" {
				if kb, err := strconv.ParseUint(fields[1], 10, 64); err == nil && kb<<10 < bytes {
					bytes, source = kb<<10, "this machine has"
				}
			}
		}
		f.Close()
	}
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(p); err == nil {
			if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && v < bytes {
				bytes, source = v, "this process's cgroup allows"
			}
		}
	}
	return bytes, source
}

func fmtBytes(b float64) string {
	switch {
	case b >= 1<<40:
		return fmt.Sprintf("%.1f TiB", b/(1<<40))
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.0f MiB", math.Ceil(b/(1<<20)))
	}
	return fmt.Sprintf("%.0f KiB", math.Ceil(b/(1<<10)))
}

// paramBytes is the size of n float32 vectors of the network's parameters.
func paramBytes(arch fpnet.Arch, n int) float64 { return 4 * float64(arch.NumParams()) * float64(n) }

// activationBytes is one forward workspace for a batch: the products and
// the activations of every layer.
func activationBytes(arch fpnet.Arch, batch int) float64 {
	var units float64
	for _, s := range arch.Sizes[1:] {
		units += float64(s)
	}
	return 2 * 4 * units * float64(batch)
}
