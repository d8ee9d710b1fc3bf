# fsrep entry points. `make` or `make help` lists them.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Go from PATH, else the usual install location (CI may run with a minimal PATH).
# /usr/local/go/bin is also appended to PATH so tests that exec `go` find it.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
export PATH := $(PATH):/usr/local/go/bin

FUZZTIME ?= 60s
TEST_TIMEOUT ?= 20m
# Extra flags for `make run`, e.g. RUN_ARGS='--data-dir /tmp/x'.
RUN_ARGS ?= --data-dir ./fsrep-data

IMAGE ?= fsrep:dev
IMAGE_DIR := build/image
COMPOSE_DIR := build/compose
COMPOSE_PROJECT ?= fsrep
COMPOSE_WAIT ?= 120
# `docker compose` (v2 plugin) when present, else `docker-compose` (v1); decided when used.
COMPOSE ?= $(shell if docker compose version >/dev/null 2>&1; then echo docker compose; \
	elif command -v docker-compose >/dev/null 2>&1; then echo docker-compose; \
	else echo docker compose; fi)

.PHONY: help build run test test-crash test-kclient test-bigdir fuzz bench bench-quick bench-anchors bench-go images compose-up compose-down compose-ps compose-test compose-test-short compose-test-az-loss compose-test-partition compose-test-frozen compose-test-rolling fmt vet clean

help: ## list targets (default)
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z0-9_-]+:.*?## / {printf "  %-23s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build fsrepd and fsrepctl into bin/
	$(GO) build -o bin/ ./cmd/...

run: build ## build, then start the embedded 3-node default cluster (data in ./fsrep-data)
	./bin/fsrepd $(RUN_ARGS)

test: ## install test deps (libnfs-utils, gcc), go vet, race tests, 10s per fuzz target
	bash scripts/install-test-deps.sh
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	FUZZTIME=10s GO="$(GO)" bash scripts/fuzz-short.sh

# CRASH_DURATION: how long the randomized crash schedule runs; CRASH_SEED
# replays one (the test logs the seed it used).
CRASH_DURATION ?= 60s
CRASH_SEED ?= 0
test-crash: ## kill fsrepd processes at every fault point, then on a seeded random schedule (docs/crash-testing.md)
	FSREP_CRASH_SEED=$(CRASH_SEED) $(GO) test -tags crash -count=1 -v -timeout 30m ./tests/crash/ -args -duration $(CRASH_DURATION) \
		| grep -vE '^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9:]+ (write|received unexpected)'

test-kclient: ## the real Linux NFSv3 client (QEMU, needs root) against `make run`'s cluster: 3 mount variants
	GO="$(GO)" bash scripts/kclient.sh

test-bigdir: ## list a 100,000-entry directory through READDIRPLUS (make test lists 10,000)
	FSREP_BIGDIR=100000 $(GO) test -count=1 -timeout 20m -run TestBigDirectoryListing -v ./tests/ | grep -E 'bigdir_test|^(---|ok|FAIL)'

fuzz: ## run every fuzz target for FUZZTIME (default 60s; FUZZ=regexp to pick targets)
	FUZZTIME=$(FUZZTIME) GO="$(GO)" bash scripts/fuzz-short.sh

# BENCH_COUNT: repetitions of each Go benchmark (benchstat wants 6 or more).
BENCH_COUNT ?= 6

bench: ## nfsbench (../shared/bench) against the embedded 3-AZ cluster, 3 runs: table of medians in results/bench/
	GO="$(GO)" bash scripts/bench.sh

bench-quick: ## nfsbench smoke run against the embedded cluster (small sizes, one run; verifies every byte)
	GO="$(GO)" bash scripts/bench.sh --quick

bench-anchors: ## ../shared/bench/run-anchors.sh, then nfsbench against fsrep in the same run: fsrep/anchor ratios
	GO="$(GO)" bash scripts/bench.sh --anchors --wait 240

bench-go: ## Go micro-benchmarks of the hot paths, BENCH_COUNT times each (benchstat input)
	mkdir -p results/bench
	$(GO) test -run='^$$' -bench=. -benchmem -count=$(BENCH_COUNT) ./fs/... ./meta/... ./gateway/... ./replication/... \
		| tee results/bench/go-$$(date -u +%Y%m%dT%H%M%SZ).txt

images: ## build the fsrep:dev docker image (FROM scratch, static binaries built on the host)
	rm -rf $(IMAGE_DIR)
	mkdir -p $(IMAGE_DIR)
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags='-s -w' -o $(IMAGE_DIR)/ ./cmd/fsrepd ./cmd/fsrepctl ./cmd/fsrep-workload
	docker build -f Dockerfile -t $(IMAGE) $(IMAGE_DIR)

$(COMPOSE_DIR)/secret: $(COMPOSE_DIR)/tls/ca.crt
	mkdir -p $(COMPOSE_DIR)
	umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $@

# The compose cluster's CA and one certificate per node (docs/security.md).
COMPOSE_NODES := n1a n1b n2a n2b n3a n3b
$(COMPOSE_DIR)/tls/ca.crt:
	$(GO) build -o bin/ ./cmd/fsrepd
	./bin/fsrepd tls ca --dir $(COMPOSE_DIR)/tls --name compose --force
	for n in $(COMPOSE_NODES); do ./bin/fsrepd tls issue --ca-dir $(COMPOSE_DIR)/tls --node $$n --host $$n --out $(COMPOSE_DIR)/tls/$$n; done

compose-up: images $(COMPOSE_DIR)/secret ## start the 6-node, 3-AZ compose cluster and wait until healthy
	$(COMPOSE) -p $(COMPOSE_PROJECT) up -d
	bash scripts/compose-wait.sh $(COMPOSE_PROJECT) $(COMPOSE_WAIT)
	bash scripts/compose-volume.sh $(COMPOSE_PROJECT) data
	@echo "n1a: NFS 127.0.0.1:20490, admin https://127.0.0.1:19090 (fsrepctl --ca-file $(COMPOSE_DIR)/tls/ca.crt)"

compose-ps: ## show the compose cluster's containers and health
	$(COMPOSE) -p $(COMPOSE_PROJECT) ps

compose-down: ## stop the compose cluster and delete its containers, networks and data volumes
	$(COMPOSE) -p $(COMPOSE_PROJECT) down -v --remove-orphans

# The AZ-failure scenarios (tests/compose, docs/compose-harness.md): each run
# of a scenario starts its own compose project fsrepct<run><name><n>, so a
# `make compose-up` cluster, or another checkout's run on the same engine, is
# never touched; whatever way the recipe ends, scripts/compose-clean.sh
# removes what is left of this run's projects (fsrepct<run>*).
# COMPOSE_REPEAT: repetitions of each scenario (median and max in the report):
# 3 for `make compose-test`, 1 for the single-scenario targets unless given.
COMPOSE_REPEAT ?= 3
COMPOSE_TEST_TIMEOUT ?= 150m
COMPOSE_TEST_FLAGS ?= -v -count=1
compose_repeat_one = $(if $(filter command line environment,$(origin COMPOSE_REPEAT)),$(COMPOSE_REPEAT),1)
# $(1): the -run regexp, $(2): repetitions, $(3): timeout. (The shell runs
# with -e: the exit status is kept with ||, so the clean-up runs when a
# scenario fails; the EXIT trap runs it when the recipe is interrupted.)
compose_test = run=$$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n'); \
	trap 'bash scripts/compose-clean.sh fsrepct$$run' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
	rc=0; COMPOSE="$(COMPOSE)" FSREP_COMPOSE_RUN=$$run $(GO) test -tags compose $(COMPOSE_TEST_FLAGS) -timeout $(3) -run '$(1)' ./tests/compose/ -args -repeat=$(2) || rc=$$?; \
	exit $$rc

compose-test: images $(COMPOSE_DIR)/secret ## every compose AZ-failure scenario COMPOSE_REPEAT times (3); report in results/
	$(call compose_test,.,$(COMPOSE_REPEAT),$(COMPOSE_TEST_TIMEOUT))

compose-test-short: images $(COMPOSE_DIR)/secret ## every compose scenario once (what CI runs when Docker is there)
	$(call compose_test,.,1,45m)

compose-test-az-loss: images $(COMPOSE_DIR)/secret ## scenarios 1+5+6: kill the leader's AZ, bring it back, kill another
	$(call compose_test,TestAZLoss,$(compose_repeat_one),$(COMPOSE_TEST_TIMEOUT))

compose-test-partition: images $(COMPOSE_DIR)/secret ## scenario 2: cut the leader's AZ off the region network, then heal
	$(call compose_test,TestAZPartition,$(compose_repeat_one),$(COMPOSE_TEST_TIMEOUT))

compose-test-frozen: images $(COMPOSE_DIR)/secret ## scenario 3: docker pause a replica holder
	$(call compose_test,TestFrozenNode,$(compose_repeat_one),$(COMPOSE_TEST_TIMEOUT))

compose-test-rolling: images $(COMPOSE_DIR)/secret ## scenario 4: restart the six nodes one by one
	$(call compose_test,TestRollingRestart,$(compose_repeat_one),$(COMPOSE_TEST_TIMEOUT))

fmt: ## gofmt -s every Go file
	find . -name '*.go' -not -path './build/*' -not -path './.*' -exec gofmt -s -l -w {} +

vet: ## go vet ./...
	$(GO) vet ./...

clean: ## remove bin/ and build/ (keeps ./fsrep-data)
	rm -rf bin build
