# paysidecar — build, run and test.
#
#   make run    build everything and start the sandbox upstream, the sidecar
#               and every flow plugin on embedded defaults
#   make test   everything CI checks: lint, short fuzz runs of every fuzz
#               target, and race-enabled tests (SQLite and PostgreSQL
#               stores, real plugin processes, the sandbox over loopback
#               HTTP) including a seconds-long smoke run of the load
#               program, ending with a summary of what was skipped and why
#   make bench  the load program against the real processes (the table of
#               performance targets, docs/benchmarks.md), then the Go
#               micro-benchmarks

GO        ?= go
BIN       := bin
# The host module and the plugin SDK, a module of its own (go.work joins
# them for development).
PKGS      := ./... ./sdk/...
# Inputs per fuzz target: a count, not a duration (see internal/tools/fuzz).
FUZZ_EXECS ?= 10000
BENCHTIME ?= 1s

.PHONY: all build plugins run test test-go fuzz lint proto proto-check bench bench-load bench-go clean

all: build

build: plugins
	$(GO) build -o $(BIN)/paysidecar ./sidecar/cmd/paysidecar

# Every directory under plugins/ that holds a main package is a flow
# plugin, built to bin/plugins/<directory name>. A plugin process runs
# beside every sidecar, and nearly all of its executable ends up resident,
# so it is built small (as the Dockerfile builds it): static, without cgo,
# since a cgo build maps libc and the dynamic loader into every plugin
# (resident in every plugin for nothing a flow uses; Go's own DNS resolver
# serves it), and with gRPC's grpcnotrace tag, which leaves out gRPC's
# golang.org/x/net/trace debug pages (off unless grpc.EnableTracing is
# set).
PLUGIN_ENV   := CGO_ENABLED=0
PLUGIN_FLAGS := -tags=grpcnotrace
plugins:
	@mkdir -p $(BIN)/plugins
	@for d in plugins/*/; do \
		p=$$(basename $$d); \
		[ "$$($(GO) list -f '{{.Name}}' ./$$d 2>/dev/null)" = main ] || continue; \
		echo "$(PLUGIN_ENV) go build $(PLUGIN_FLAGS) -o $(BIN)/plugins/$$p ./plugins/$$p"; \
		$(PLUGIN_ENV) $(GO) build $(PLUGIN_FLAGS) -o $(BIN)/plugins/$$p ./plugins/$$p || exit 1; \
	done

run: build
	./$(BIN)/paysidecar run --sandbox

test: lint fuzz test-go

# test-go runs every test (the fuzz targets' seed corpora included) with
# the race detector; gotestsum closes with the skipped tests and their
# reasons, then the failures.
test-go:
	$(GO) tool gotestsum --format pkgname-and-test-fails --format-hide-empty-pkg -- -race -count=1 -timeout 12m $(PKGS)

# fuzz finds every fuzz target in both modules and fuzzes each for
# FUZZ_EXECS inputs.
fuzz:
	$(GO) run ./internal/tools/fuzz -execs $(FUZZ_EXECS) $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

proto:
	$(GO) generate ./sdk/plugin/...

# proto-check regenerates the plugin contract and fails if the committed
# code differs.
proto-check: proto
	git diff --exit-code -- sdk/plugin/internal

# bench runs the load program against the real processes on loopback
# (internal/cmd/bench: a few minutes; BENCH_FLAGS=-smoke for seconds), then
# the Go micro-benchmarks of every package.
bench: bench-load bench-go

bench-load: build
	$(GO) run ./internal/cmd/bench -bin $(BIN) $(BENCH_FLAGS)

bench-go:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) $(PKGS)

clean:
	rm -rf $(BIN)
