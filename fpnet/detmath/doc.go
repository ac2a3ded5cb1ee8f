// Package detmath is the deterministic float64 math and randomness that
// fpnet and es share: functions and random streams that give the same bits
// on every platform and backend.
//
// It holds exp, two logarithms (Log and LogAtanh: see LogAtanh for why
// there are two), cos(πx) and exact frexp/ldexp, each written with an
// explicit conversion around every product that meets an add so that no
// compiler may fuse it into an FMA; the SplitMix64 generator and a
// Gaussian drawn from it; and the counter-based streams (StreamKey,
// NewStream) that make every random number of a run a pure function of a
// key and a counter.
//
// Adam is not here but in its sibling fpnet/optim: it is an optimizer with
// state that trainers checkpoint, built on this package, while detmath is
// a stateless leaf that the network itself (loss, initialiser) imports.
package detmath
