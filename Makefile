# underflow: the commands README documents. `make test` is what CI runs.
GO      ?= go
QEMU    ?= qemu-aarch64-static
# Packages whose results must be the same bits on every backend.
EXACT_PKGS = ./kernels/... ./fpnet/... ./es/... ./cmd/train ./cmd/ftzcheck/...

.PHONY: all generate check-generated vet test test-native test-backends test-purego test-arm64 test-race test-fuzz bench bench-openblas train ftzcheck

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

test: check-generated vet test-native test-backends test-purego test-arm64 test-race test-fuzz
	@echo "make test: all test stages passed"

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
