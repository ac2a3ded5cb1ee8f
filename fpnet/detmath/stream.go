package detmath

// Counter-based randomness: every random number the trainer uses is a pure
// function of a key and a counter, so it does not depend on which goroutine
// asks first, and a resumed run draws exactly what an uninterrupted one would.

// mix64 is the SplitMix64 finalizer (Steele, Lea, Flood 2014): a bijection of
// uint64 with good avalanche, integer-only and so identical everywhere.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// golden is 2^64 / φ, the SplitMix64 increment.
const golden = 0x9e3779b97f4a7c15

// StreamKey derives the key of an independent stream from a seed and a list
// of stream identifiers (purpose tag, generation, member, ...).
func StreamKey(seed uint64, ids ...uint64) uint64 {
	k := mix64(seed ^ 0x6a09e667f3bcc908)
	for _, id := range ids {
		k = mix64(k + golden*(id+1))
	}
	return k
}

// NewStream returns the generator of the stream with that key:
// SplitMix64 (state advances by golden, output is the finalizer of the
// state), started at the key.
func NewStream(key uint64) SplitMix64 { return SplitMix64{State: key} }
