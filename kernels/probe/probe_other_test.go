//go:build (!amd64 && !arm64) || purego

package probe

import (
	"testing"

	"github.com/seed8b67a5e0/underflow/kernels"
)

// TestNoProbes checks that a build without probes says so instead of
// pretending: no environment is honoured and every probe is refused.
func TestNoProbes(t *testing.T) {
	if envs := HardwareEnvs(); envs != nil {
		t.Errorf("HardwareEnvs = %v, want nil", envs)
	}
	for _, env := range kernels.Envs {
		if _, err := Scalar(env, OpMul, 1, 1, 0); err != ErrNoProbe {
			t.Errorf("%v: Scalar error %v, want ErrNoProbe", env, err)
		}
	}
}
