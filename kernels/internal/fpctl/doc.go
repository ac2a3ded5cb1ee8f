// Package fpctl reads and loads the calling thread's float control register
// (MXCSR on amd64, FPCR on arm64) and says which Arm modes this CPU has: the
// pieces that package kernels and its hardware probes share, so that
// neither has to export them. A -tags purego build has none of it.
package fpctl
