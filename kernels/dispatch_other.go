//go:build purego || !(amd64 || arm64)

package kernels

// simdBackends: a pure-Go build, or an architecture without kernels, has
// no SIMD backend.
func simdBackends() []*backend { return nil }
