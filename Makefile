# Fleetwatch: `make run` runs everything locally; `make test` checks everything.
SHELL   := /bin/bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.Version=$(VERSION)
GO      ?= go
BINS    := ./agent/cmd/fleetwatch-agent ./hub/cmd/fleetwatch-hub ./agent/cmd/fleetwatch-sim

.PHONY: all build run test deps vet race arm check-deps test-js fuzz clean

all: build

## build: bin/fleetwatch-agent, bin/fleetwatch-hub, bin/fleetwatch-sim
build:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ $(BINS)

## run: hub + embedded broker + this machine's agent + simulated devices on :8080
run: build
	./scripts/run.sh

## test: everything CI checks (installs mosquitto/node if missing and root)
test: deps vet race arm check-deps test-js
	@echo "make test: all checks passed"

deps:
	@./scripts/deps.sh

vet:
	$(GO) vet ./...

race:
	FLEETWATCH_REQUIRE_MOSQUITTO=1 $(GO) test -race -count=1 -timeout 10m ./...

## arm: the agent must build for 32-bit ARMv6 (Raspberry Pi Zero/1)
arm:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=6 $(GO) build -o /dev/null ./agent/cmd/fleetwatch-agent
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=6 $(GO) vet ./agent/...
	@echo "arm: fleetwatch-agent builds for linux/arm (GOARM=6)"

check-deps:
	@./scripts/check-deps.sh

test-js:
	cd dashboard && node --test test/

## fuzz: run each decoder fuzzer for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecodeTelemetry -fuzztime=$(FUZZTIME) ./agent/telemetry/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeStatus -fuzztime=$(FUZZTIME) ./agent/telemetry/

clean:
	rm -rf bin
