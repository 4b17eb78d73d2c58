# Ferry: build, run, test, bench, lint, dist. Each target installs the npm dependencies it needs.

SHELL := /bin/bash
NODE ?= node
FERRY_HOME ?= $(CURDIR)/.ferry-home
DEPS := node_modules/.deps-stamp
TEST_CONCURRENCY ?= 4

.PHONY: all build run test test-unit bench lint dist clean

all: build

$(DEPS): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: $(DEPS)
	npx tsc -p tsconfig.json

# The daemon with a home inside the checkout; web admin on :8888, sync on :22100.
run: build
	bin/ferry run --home "$(FERRY_HOME)" $(RUN_ARGS)

test: build
	$(NODE) scripts/check-imports.mjs
	$(NODE) --test --test-concurrency=$(TEST_CONCURRENCY) $(shell find build/test -name '*.test.js' | sort)

bench: build
	$(NODE) build/bench/run.js $(BENCH_ARGS)

lint: $(DEPS)
	npx tsc -p tsconfig.json --noEmit
	$(NODE) scripts/check-imports.mjs

dist: build
	@echo "dist: single executables and packages come with the packaging issue (#7)"; exit 1

clean:
	rm -rf build dist
