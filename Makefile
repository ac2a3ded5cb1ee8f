# underflow: the commands README documents. `make test` is what CI runs.
GO      ?= go
QEMU    ?= qemu-aarch64-static
# The AVX-512 emulator harness, for CPUs without AVX-512 (.ci/test-avx512).
AVX512EMU ?= ../shared/avx512emu/run
export GO QEMU AVX512EMU
# Packages whose results must be the same bits on every backend.
EXACT_PKGS = ./kernels/... ./fpnet/... ./es/... ./cmd/train ./cmd/eval ./cmd/ftzcheck/...

.PHONY: all generate check-generated vet test test-deps test-native test-backends test-purego test-arm64 test-race test-fuzz test-avx512 bench bench-openblas train ftzcheck

all: test

# Regenerate the Avo assembly (kernels/**/*_gen_amd64.s and their stubs).
generate:
	cd asm && $(GO) generate ./...

# Fail when the checked-in generated files differ from a fresh generation.
check-generated:
	@./.ci/check-generated

vet:
	$(GO) vet ./...
	cd asm && $(GO) vet ./...

# Every stage. What the stages need is installed first (or make test stops
# before running anything); the AVX-512 stage, about ten minutes on one core
# under the emulator, runs alongside the others and its output follows
# theirs.
test: test-deps
	@./.ci/alongside test-avx512 -- check-generated vet test-native test-backends test-purego test-arm64 test-race test-fuzz
	@echo "make test: all test stages passed"

# Installs the Debian packages the stages need and this machine lacks.
test-deps:
	@./.ci/test-deps

# Default dispatch, every package.
test-native:
	$(GO) test ./...

# Each SIMD backend this CPU has, forced, and required to have served the tests.
test-backends:
	@for b in $$($(GO) test ./kernels -run '^TestListBackends$$' -v | sed -n 's/^backends: //p'); do \
		echo "== backend $$b"; \
		UNDERFLOW_BACKEND=$$b UNDERFLOW_REQUIRE_BACKEND=$$b $(GO) test -count=1 $(EXACT_PKGS) || exit 1; \
	done

# The pure-Go build: no assembly at all.
test-purego:
	UNDERFLOW_REQUIRE_BACKEND=purego $(GO) test -count=1 -tags purego ./...

# arm64 (NEON and FPCR) under qemu-aarch64.
test-arm64:
	GOARCH=arm64 UNDERFLOW_REQUIRE_BACKEND=neon $(GO) test -count=1 -short -exec $(QEMU) $(EXACT_PKGS)

test-race:
	$(GO) test -count=1 -race -short ./es/... ./kernels/...

# Arbitrary bytes into every loader of a file a user can hand the commands
# (ES and backprop checkpoints, models, options.json), FUZZTIME each. One
# package and one target per `go test -fuzz`.
FUZZTIME ?= 5s
FUZZ_TARGETS = ./es:FuzzParseCheckpoint ./fpnet/safetensors:FuzzParseCheckpoint \
	./fpnet/safetensors:FuzzParseParams ./cmd/train:FuzzOptionsJSON
test-fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "== fuzz $${t%%:*} $${t##*:}"; \
		$(GO) test -run '^$$' -fuzz "^$${t##*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}" || exit 1; \
	done

# The avx512 backend's tests on an AVX-512 CPU: natively where this one has
# AVX-512, else under the emulator $(AVX512EMU).
test-avx512:
	@./.ci/test-avx512

# Kernel and ES benchmarks; see README for the figures and how they were taken.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2x -count 1 ./bench

# OpenBLAS side by side (needs Debian libopenblas-dev).
bench-openblas:
	OPENBLAS_NUM_THREADS=1 $(GO) test -tags openblas -run '^$$' -bench 'MatMul' -count 1 ./bench

train:
	$(GO) run ./cmd/train

ftzcheck:
	$(GO) run ./cmd/ftzcheck
