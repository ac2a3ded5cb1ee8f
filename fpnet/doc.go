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
// The package holds the network alone: its architecture and recipes, the
// deterministic initialiser, the forward pass, the softmax cross-entropy
// (own exp and log from fpnet/detmath, so the loss is bit-identical on every
// platform), evaluation, and the parameters' identity (ParamsSHA256). What
// trains it (fpnet/backprop, es), what feeds it (fpnet/mnist) and what
// stores it (fpnet/safetensors) live in their own packages.
package fpnet
