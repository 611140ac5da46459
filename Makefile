# Basalt. `make run` starts the daemon on its embedded defaults;
# `make test` sets up what the tests need (MariaDB, Redis) and runs them all.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BENCH   ?= .

.PHONY: all build run test test-short bench bench-smtp vet fmt clean webcheck

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/basalt ./cmd/basalt

run: build
	./bin/basalt serve

# Starts private MariaDB and Redis servers on free loopback ports (installing
# the Debian packages when missing), runs the whole suite under the race
# detector against them, and stops them. webdeps.sh first installs what the
# browser tests need (Debian's chromium, e2e/'s npm packages) and type-checks
# the webmail app (tsc --checkJs). The browser test then runs once more
# without the race detector, over a 100,000-message folder (under it the
# embedded SQLite is too slow to fill one; see server/e2e_test.go).
test:
	./scripts/webdeps.sh
	./scripts/testenv.sh run -- $(GO) test -race -count=1 -timeout 20m ./...
	./scripts/testenv.sh run -- $(GO) test -count=1 -timeout 10m -run '^TestWebmailBrowser$$' ./server

# Without the servers: SQLite and in-process cache only (skips the rest,
# except under CI=true where a missing server fails).
test-short:
	$(GO) test -count=1 ./...

bench:
	./scripts/testenv.sh run -- $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -timeout 60m ./...

# smtp-source sends 10,000 messages of 4 KB over 10 connections into the MX
# listener, on SQLite and then on MariaDB, and prints messages per second.
bench-smtp:
	./scripts/testenv.sh run -- ./scripts/bench-smtp.sh

# go vet, gofmt, and DESIGN.md's layers: the import graph is checked
# against internal/layers' table (an import that goes up fails).
vet:
	$(GO) vet ./...
	$(GO) test -count=1 -run 'TestCheck|TestLayers' ./internal/layers
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }

# The webmail app's JSDoc types, checked by TypeScript (e2e/'s npm packages).
webcheck:
	cd static && ../e2e/node_modules/.bin/tsc -p jsconfig.json

fmt:
	gofmt -w .

clean:
	rm -rf bin
