//go:build (!amd64 && !arm64) || purego

package kernels

// No hardware probes here: on other architectures, and in the purego build,
// there is no assembly, so no environment is honoured natively and every
// probe reports ErrNoProbe.

func controlWord(env Env) (uint64, bool) { return 0, false }

// ProbeUnits is empty: this build has no probes.
func ProbeUnits() []ProbeUnit { return nil }
