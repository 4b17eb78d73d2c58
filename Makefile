# Ferry: build, run, test, bench, lint, dist. Each target installs the npm dependencies it needs.

SHELL := /bin/bash
NODE ?= node
FERRY_HOME ?= $(CURDIR)/.ferry-home
DEPS := node_modules/.deps-stamp
TEST_CONCURRENCY ?= 4

.PHONY: all build run test test-unit bench lint dist dist-check clean

all: build

$(DEPS): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: $(DEPS)
	npx tsc -p tsconfig.json
	npx tsc -p web/tsconfig.json
	$(NODE) web/build.mjs

# The daemon with a home inside the checkout; web admin on :8888, sync on :22100.
run: build
	bin/ferry run --home "$(FERRY_HOME)" $(RUN_ARGS)

test: build
	$(NODE) scripts/check-imports.mjs
	$(NODE) --test --test-concurrency=$(TEST_CONCURRENCY) $$(find build/test -name '*.test.js' | sort)

# BENCH=scan|sync|all (default all); sizes and tools by environment, see bench/run.ts.
BENCH ?= all
bench: build
	BENCH=$(BENCH) $(NODE) build/bench/run.js $(BENCH_ARGS)

lint: $(DEPS)
	npx tsc -p tsconfig.json --noEmit
	$(NODE) scripts/check-imports.mjs

# Single executables, .deb, SPK and QPKG for x64, arm64 and armv7 into dist/ (docs/packaging.md).
# Needs the npm registry and Debian's archive only; DIST_TARGETS="x64" builds one target.
dist: build
	$(NODE) packaging/build/dist.mjs $(DIST_TARGETS)

# The slow checks of dist/: lintian, the .deb's life cycle, NAS packages in empty chroots, ARM smoke tests under qemu.
dist-check: dist
	$(NODE) --test --test-concurrency=1 $$(find build/test/packaging -name '*.dist-test.js' | sort)

clean:
	rm -rf build dist
