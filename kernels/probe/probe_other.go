//go:build (!amd64 && !arm64) || purego

package probe

// No hardware probes here: on other architectures, and in the purego build,
// there is no assembly, so no environment is honoured natively and every
// probe reports ErrNoProbe.

import "github.com/seed8b67a5e0/underflow/kernels"

func controlWord(env kernels.Env) (uint64, bool) { return 0, false }

// Units is empty: this build has no probes.
func Units() []Unit { return nil }
