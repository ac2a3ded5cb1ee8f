// Package fpnet is the float32 "deep linear" network of OpenAI 2017
// ("Nonlinear computation in deep linear networks"): matrix products, bias
// adds and power-of-two scalings only, whose one nonlinearity is float32
// underflow.
//
// A Recipe fixes the denormal environment of every op (the products, and the
// elementwise adds and scalings) and the scaling that moves the activations
// into the subnormal band. The forward pass runs the products through the
// kernels package and the elementwise ops through exact fast loops, so the
// same parameters give the same bits on every backend.
//
// Besides the network the package holds what trains and evaluates it:
// deterministic softmax cross-entropy (own exp and log, no fused
// multiply-add, so the loss is bit-identical on every platform), a
// deterministic Gaussian initialiser, Adam, MNIST IDX loading, safetensors
// save and load, and the backprop trainers (backprop.go).
package fpnet
