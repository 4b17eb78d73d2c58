# Ferry: build, run, test, bench, lint, dist. Each target installs the npm dependencies it needs; test, bench, dist
# and dist-check also the Debian packages (scripts/debian-packages, as root; otherwise they are named once and the tests
# that need them skip).

SHELL := /bin/bash
NODE ?= node
FERRY_HOME ?= $(CURDIR)/.ferry-home
DEPS := node_modules/.deps-stamp
TEST_CONCURRENCY ?= 4
# A safety net for a test that hangs, so that CI fails instead of waiting forever. Node 20 applies it to each test
# file as a whole: 10 minutes is far above any file's time on a busy 2-core machine (the longest take 1-3 minutes).
TEST_TIMEOUT_MS ?= 600000
# The network lab (namespaces, miniupnpd, trackers) beside the checkout; its install-deps.sh runs with ours.
NETLAB ?= $(abspath $(CURDIR)/../shared/netlab)
export NETLAB

.PHONY: all build run test test-unit fuzz bench lint dist dist-check clean system-deps

all: build

$(DEPS): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# Debian packages and the network lab's dependencies: checked again only when the list or a script changes, or
# until nothing is missing.
SYSTEM_DEPS := build/.system-deps-stamp
$(SYSTEM_DEPS): scripts/debian-packages scripts/install-deps.sh $(wildcard $(NETLAB)/install-deps.sh)
	scripts/install-deps.sh --stamp $@
system-deps:
	scripts/install-deps.sh --stamp $(SYSTEM_DEPS)

# Incremental: each step runs only when its inputs changed (tsc keeps what it learnt in build/*.tsbuildinfo).
TSC := node_modules/.bin/tsc
TS_STAMP := build/.tsc-stamp
WEB_STAMP := build/.web-stamp
SRC_TS := $(shell find src -name '*.ts')
# The list of sources, rewritten only when a file comes or goes: a deleted or renamed file rebuilds too, and its old
# output (a test that would still run, say) is removed.
TS_LIST := build/.ts-sources
$(shell mkdir -p build && find src test bench -name '*.ts' | sort > $(TS_LIST).new && \
  { cmp -s $(TS_LIST).new $(TS_LIST) && rm $(TS_LIST).new || mv $(TS_LIST).new $(TS_LIST); })
$(TS_STAMP): $(DEPS) tsconfig.json $(TS_LIST) $(SRC_TS) $(shell find test bench -name '*.ts')
	@cd build && find src test bench -name '*.js' 2>/dev/null | while read -r f; do \
	  [ -f "../$${f%.js}.ts" ] || { echo "removing $$f (its source is gone)"; rm -f "$$f" "$$f.map" "$${f%.js}.d.ts"; }; done; \
	  find src test bench -type d -empty -delete 2>/dev/null || true
	$(TSC) -p tsconfig.json --incremental --tsBuildInfoFile build/.tsbuildinfo
	@touch $@
# The page imports types from src/ too.
$(WEB_STAMP): $(DEPS) $(TS_LIST) $(shell find web -type f) $(SRC_TS)
	$(TSC) -p web/tsconfig.json --incremental --tsBuildInfoFile build/.web-tsbuildinfo
	$(NODE) web/build.mjs
	@touch $@

build: $(TS_STAMP) $(WEB_STAMP)

# The daemon with a home inside the checkout; web admin on :8888, sync on :22100.
run: build
	bin/ferry run --home "$(FERRY_HOME)" $(RUN_ARGS)

test: build $(SYSTEM_DEPS)
	$(NODE) scripts/check-imports.mjs
	$(NODE) --test --test-concurrency=$(TEST_CONCURRENCY) --test-timeout=$(TEST_TIMEOUT_MS) $$(find build/test -name '*.test.js' | sort)

# The fuzz targets of test/fuzz only, with many inputs each (`make test` runs them with FUZZ_RUNS' small default).
# FUZZ_SEED=n replays the run a failure printed.
FUZZ_RUNS ?= 200000
fuzz: build
	FUZZ_RUNS=$(FUZZ_RUNS) $(NODE) --test --test-concurrency=$(TEST_CONCURRENCY) --test-timeout=0 $$(find build/test/fuzz -name '*.test.js' | sort)

# BENCH=scan|sync|all (default all), or user (one method for Ferry and Syncthing beside the old harness, bench/user.ts), index / edits / transport / link (bench/index-scale.ts, bench/edit-latency.ts, bench/transport.ts, bench/link.ts; not in all); sizes and tools by environment, see bench/run.ts.
BENCH ?= all
bench: build $(SYSTEM_DEPS)
	BENCH=$(BENCH) $(NODE) build/bench/run.js $(BENCH_ARGS)

lint: $(DEPS)
	npx tsc -p tsconfig.json --noEmit
	$(NODE) scripts/check-imports.mjs

# Single executables, .deb, SPK and QPKG for x64, arm64 and armv7 into dist/ (docs/packaging.md).
# Needs the npm registry and Debian's archive only; DIST_TARGETS="x64" builds one target.
dist: build $(SYSTEM_DEPS)
	$(NODE) packaging/build/dist.mjs $(DIST_TARGETS)

# The slow checks of dist/: lintian, the .deb's life cycle, NAS packages in empty chroots, ARM smoke tests under qemu.
dist-check: dist $(SYSTEM_DEPS)
	$(NODE) --test --test-concurrency=1 $$(find build/test/packaging -name '*.dist-test.js' | sort)

clean:
	rm -rf build dist
