# paysidecar — build, run and test.
#
#   make run    build everything and start the sandbox upstream, the sidecar
#               and its three flow plugins on embedded defaults
#   make test   everything CI checks: lint, race-enabled tests (SQLite and
#               PostgreSQL stores, real plugin processes, the sandbox over
#               loopback HTTP) and short fuzz runs

GO        ?= go
BIN       := bin
PLUGINS   := wechat-jsapi wechat-miniapp alipay-native
FUZZTIME  ?= 10s
BENCHTIME ?= 1s

.PHONY: all build plugins run test test-go fuzz lint proto proto-check bench clean

all: build

build: plugins
	$(GO) build -o $(BIN)/paysidecar ./sidecar/cmd/paysidecar

plugins:
	@mkdir -p $(BIN)/plugins
	@for p in $(PLUGINS); do \
		echo "go build -o $(BIN)/plugins/$$p ./plugins/$$p"; \
		$(GO) build -o $(BIN)/plugins/$$p ./plugins/$$p || exit 1; \
	done

run: build
	./$(BIN)/paysidecar run --sandbox

test: lint fuzz test-go

test-go:
	$(GO) test -race -count=1 -timeout 12m ./...

fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzCanonicalizeJSON$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./sidecar/nkp
	$(GO) test -run='^$$' -fuzz='^FuzzVerifyTamper$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./sidecar/nkp

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

proto:
	$(GO) generate ./sdk/plugin/...

# proto-check regenerates the plugin contract and fails if the committed
# code differs.
proto-check: proto
	git diff --exit-code -- sdk/plugin/internal

bench:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./...

clean:
	rm -rf $(BIN)
