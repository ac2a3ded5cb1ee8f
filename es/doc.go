// Package es trains a parameter vector with OpenAI-style evolution
// strategies (Salimans et al. 2017, openai/evolution-strategies-starter),
// exactly and reproducibly:
//
//   - a shared Gaussian noise table built from a seed, the same bits on every
//     platform (fpnet/detmath's counter-based streams and logarithm, no
//     fused multiply-add);
//     each perturbation is a slice of it at a seeded offset;
//   - antithetic pairs θ ± σε, centered ranks in [-0.5, 0.5], Adam and L2 decay;
//   - a fitness computed by an Objective on data the whole population shares
//     in one generation;
//   - worker goroutines, each with one scratch parameter vector, evaluating
//     members in any order: every result lands in a slot fixed by the member's
//     index, and every sum runs in a fixed order, so the parameters after any
//     number of generations are bit-identical for any number of workers;
//   - checkpoints written atomically, from which a resumed run continues with
//     exactly the bits an uninterrupted run would have produced.
//
// Everything random is a pure function of (seed, generation, index), so a
// checkpoint needs only the parameters, the optimizer state and the
// generation counter.
package es
