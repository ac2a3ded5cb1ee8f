// Package bench holds the project's benchmarks (go test -bench ./bench):
// the matrix products per backend, environment and input range, side by
// side with OpenBLAS under -tags openblas, and the ES generation.
package bench
