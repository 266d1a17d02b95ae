# cctvhub: the front door. `make demo` runs the hub on the embedded default (SQLite in ./var)
# with the real CCTV files imported; `make check` runs every test. Both first install what is
# missing (scripts/setup.sh), then build.

MAKEFLAGS += --no-print-directory
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 30
CHECK_DIR := build/check
RELEASE_DIR := build/release

.PHONY: all setup build demo check check-source format format-check fuzz bench bench-http \
	bench-import bench-audit bench-geo bench-events bench-codec bench-relay bench-ws clean

all: build

setup:
	@./scripts/setup.sh

build: setup
	@cmake --preset release >/dev/null
	@cmake --build $(RELEASE_DIR) -j$(JOBS)

demo: build
	@./scripts/demo.sh $(RELEASE_DIR)/cctvhub

# The whole suite: formatting, the source checks (banned functions, include direction, the
# generated dependency list), a gcc release build of everything (tests too) with -Werror,
# then clang with ASan and UBSan: unit and integration tests, and every fuzz target's corpus
# replayed and fuzzed briefly.
check: setup format-check check-source
	@cmake -S . -B build/check-gcc -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc >/dev/null
	@cmake --build build/check-gcc -j$(JOBS)
	@cmake -S . -B $(CHECK_DIR) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
		-DCH_SANITIZE=address,undefined -DCH_FUZZ=ON >/dev/null
	@cmake --build $(CHECK_DIR) -j$(JOBS)
	@cd $(CHECK_DIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j$(JOBS)
	@./scripts/fuzz.sh $(CHECK_DIR) $(FUZZ_SECONDS)

format:
	@git ls-files --cached --others --exclude-standard '*.c' '*.h' | xargs clang-format -i

format-check:
	@git ls-files --cached --others --exclude-standard '*.c' '*.h' | xargs clang-format --dry-run --Werror
	@echo "format: ok"

# Fast checks of the sources no compiler makes, before any build: see scripts/check_source.py.
check-source:
	@./scripts/check_source.sh

fuzz: setup
	@cmake -S . -B $(CHECK_DIR) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
		-DCH_SANITIZE=address,undefined -DCH_FUZZ=ON >/dev/null
	@cmake --build $(CHECK_DIR) -j$(JOBS)
	@./scripts/fuzz.sh $(CHECK_DIR) $(FUZZ_SECONDS)

bench: bench-http bench-import bench-audit bench-geo bench-events bench-codec bench-relay bench-ws

bench-http: build
	@./bench/http/run.sh $(RELEASE_DIR)/cctvhub

bench-import: build
	@BUILD=$(CURDIR)/$(RELEASE_DIR) ./bench/import/run.sh

bench-audit: build
	@BUILD=$(CURDIR)/$(RELEASE_DIR) ./bench/audit/run.sh

bench-geo: build
	@./bench/geo/run.sh
	@BUILD=$(CURDIR)/$(RELEASE_DIR) ./bench/geo/http.sh

bench-events: build
	@BUILD=$(CURDIR)/$(RELEASE_DIR) ./bench/events/run.sh

bench-codec: build
	@BUILD=$(CURDIR)/$(RELEASE_DIR) ./bench/codec/run.sh

bench-relay: build
	@BUILD=$(CURDIR)/$(RELEASE_DIR) ./bench/relay/run.sh

bench-ws: build
	@BUILD=$(CURDIR)/$(RELEASE_DIR) ./bench/ws/run.sh

clean:
	rm -rf build
