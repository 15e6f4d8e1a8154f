# EvServer: the two commands of the README contract, and what they need.
#   make run   installs what is missing, builds, and runs evserved on a sensible default
#   make test  installs what is missing, builds, and runs the whole test suite (with a short sanitizer
#              and fuzzing pass: `make check-sanitizers`, `make check-fuzz`)
#   make sanitize          the whole Swift suite, and the daemon's service tests, under TSan and ASan
#   make fuzz FUZZ_SECONDS=600   each fuzz target for that long (default 60 s each)
#   make docs              the DocC documentation of the library; a broken ``Symbol`` link fails it
#   make bench-chat        chat broadcast in-process vs through Redis;  make cluster: the chat across netns hosts
SHELL := /bin/bash
SWIFT_BUILD_FLAGS ?=
RUN_ARGS ?= --listen tcp://127.0.0.1:7000?service=echo --listen tcp://127.0.0.1:7013?service=daytime \
            --listen tcp://127.0.0.1:7001?service=upper --listen udp://127.0.0.1:7000?service=echo \
            --listen udp://127.0.0.1:7013?service=daytime --mode event

.PHONY: bench bench-reload bench-quick bench-chat cluster callgrind run test deps build build-release test-swift test-daemon docs sanitize sanitize-thread sanitize-address \
        fuzz fuzz-build fuzz-replay check-fuzz clean

## Installs Debian's libev-dev (the C library), pytest (the daemon tests' runner), ss, prlimit and haproxy when missing.
deps:
	@if [ ! -f /usr/include/ev.h ]; then \
	    echo "installing libev-dev"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq libev-dev; \
	fi
	@if ! command -v ss >/dev/null || ! command -v prlimit >/dev/null; then \
	    echo "installing iproute2 and util-linux (ss, prlimit: the daemon tests read queues and set limits)"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq iproute2 util-linux; \
	fi
	@if ! command -v systemd-socket-activate >/dev/null || ! command -v systemd-analyze >/dev/null; then \
	    echo "installing systemd (systemd-socket-activate, systemd-analyze: the socket activation tests and unit check)"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq systemd; \
	fi
	@if [ ! -f /usr/include/hiredis/adapters/libev.h ] || ! command -v redis-server >/dev/null; then \
	    echo "installing libhiredis-dev and redis-server (EvServerRedis links hiredis; the chat tests run Redis)"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	        libhiredis-dev redis-server; \
	fi
	@python3 -c "import pytest" 2>/dev/null || python3 -m pip install -q pytest
	@if ! command -v haproxy >/dev/null; then \
	    echo "installing haproxy (the PROXY protocol tests put evserved behind it)"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq haproxy; \
	fi

build: deps
	swift build $(SWIFT_BUILD_FLAGS)

build-release: deps
	swift build -c release $(SWIFT_BUILD_FLAGS)

run: build-release
	.build/release/evserved $(RUN_ARGS)

test: build test-swift test-daemon docs fuzz-replay sanitize check-fuzz

test-swift:
	swift test $(SWIFT_BUILD_FLAGS)

test-daemon:
	EVSERVED=$(CURDIR)/.build/debug/evserved python3 -m pytest -q Tests/daemon

## The library's documentation: the doc comments and the catalog Sources/EvServer/EvServer.docc (articles,
## landing page), built with swift-docc-plugin into .build/plugins/Swift-DocC/outputs/EvServer.doccarchive.
## Any DocC warning fails it, above all a ``Symbol`` link to a symbol that does not exist.
docs: deps
	swift package --disable-sandbox generate-documentation --target EvServer --warnings-as-errors

## Benchmarks (release builds; see BENCHMARKS.md). bench: 5 interleaved rounds of 5 s per workload and server.
BENCH_ARGS ?= --rounds 5 --seconds 5 --charts bench/charts
bench: deps
	python3 bench/run.py $(BENCH_ARGS)
	python3 bench/chat.py --evserved .build/release/evserved

## What a SIGHUP reload costs clients: churn with and without reloads, without and with --workers (BENCHMARKS.md).
bench-reload: deps
	python3 bench/reload.py

bench-quick: deps
	python3 bench/run.py --rounds 1 --seconds 2

## Chat broadcast through Redis between two evserved instances beside the in-process figure, with CPU per
## delivery; then memory per idle connection (evserved and kernel) and Redis's cost per PUBLISH by number of
## subscribed processes: the README's capacity table ("Scaling out") is worked out from these (BENCHMARKS.md).
bench-chat: deps
	swift build -c release --product evserved
	python3 bench/chat.py --evserved .build/release/evserved
	python3 bench/capacity.py --evserved .build/release/evserved

## The chat across hosts: network namespaces on a bridge (HAProxy with send-proxy/send-proxy-v2 and health checks,
## two evserved with --proxy-protocol, Redis, the clients), always removed after; checks the daemons log the
## clients' own addresses.
## Needs root (ip netns); installs haproxy when missing.
cluster: build
	@if ! command -v haproxy >/dev/null; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq haproxy; \
	fi
	EVSERVED=$(CURDIR)/.build/debug/evserved python3 Tests/cluster/cluster.py

## Server-side instructions per round trip (valgrind's callgrind), evserved event mode vs the C reference.
callgrind: deps
	python3 bench/callgrind.py

## Sanitizers: ThreadSanitizer for the modes with threads or tasks (thread, pool, async; the Swift suite runs every mode),
## AddressSanitizer for the rest. Any report fails the run (the daemon tests look for reports on stderr).
sanitize: sanitize-thread sanitize-address

sanitize-thread: deps
	swift build --build-tests --sanitize=thread --scratch-path .build-tsan
	TSAN_OPTIONS=halt_on_error=1 swift test --skip-build --sanitize=thread --scratch-path .build-tsan
	EVSERVED=$(CURDIR)/.build-tsan/debug/evserved python3 -m pytest -q Tests/daemon/test_services.py \
	    Tests/daemon/test_datagrams.py -k "thread or pool or async"

sanitize-address: deps
	swift build --build-tests --sanitize=address --scratch-path .build-asan
	ASAN_OPTIONS=detect_leaks=0 swift test --skip-build --sanitize=address --scratch-path .build-asan
	ASAN_OPTIONS=detect_leaks=0 EVSERVED=$(CURDIR)/.build-asan/debug/evserved python3 -m pytest -q \
	    Tests/daemon/test_services.py Tests/daemon/test_datagrams.py -k "event or sync"

## Fuzzing (libFuzzer through `--sanitize=fuzzer`, with AddressSanitizer). Targets: address, listener,
## cidr, lines, proxy. Seeds and every crash found so far live in Tests/fuzz-corpus/TARGET and are replayed by
## `make test`; a new crash file is written to .build-fuzz/crashes/ and should be added there once fixed.
FUZZ_TARGETS := address listener cidr lines proxy
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := --product evserver-fuzz --sanitize=fuzzer --sanitize=address -Xswiftc -DFUZZING \
              -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table --scratch-path .build-fuzz

fuzz-build: deps
	swift build $(FUZZ_FLAGS)

fuzz: fuzz-build
	@mkdir -p .build-fuzz/crashes
	@for target in $(FUZZ_TARGETS); do \
	    mkdir -p .build-fuzz/corpus/$$target && cp -n Tests/fuzz-corpus/$$target/* .build-fuzz/corpus/$$target/; \
	    echo "fuzzing $$target for $(FUZZ_SECONDS) s"; \
	    EVSERVER_FUZZ_TARGET=$$target SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 \
	        .build-fuzz/debug/evserver-fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 \
	        -artifact_prefix=.build-fuzz/crashes/$$target- .build-fuzz/corpus/$$target > .build-fuzz/$$target.log 2>&1; \
	    status=$$?; tail -n 2 .build-fuzz/$$target.log; \
	    if [ $$status != 0 ]; then grep -m1 -A8 "Fatal error\|ERROR:" .build-fuzz/$$target.log; \
	        echo "fuzzing $$target failed: see .build-fuzz/$$target.log and .build-fuzz/crashes/"; exit 1; fi; \
	done

## The bounded pass `make test` runs.
check-fuzz:
	$(MAKE) fuzz FUZZ_SECONDS=20

## Replays the committed corpus (seeds and past crashes) through a normal build: regression tests.
fuzz-replay: build
	@for target in $(FUZZ_TARGETS); do .build/debug/evserver-fuzz $$target Tests/fuzz-corpus/$$target || exit 1; done

clean:
	rm -rf .build .build-tsan .build-asan .build-fuzz
