# EvServer: the two commands of the README contract, and what they need.
#   make run   installs what is missing, builds, and runs evserved on a sensible default
#   make test  installs what is missing, builds, and runs the whole test suite
SHELL := /bin/bash
SWIFT_BUILD_FLAGS ?=
RUN_ARGS ?= --listen tcp://127.0.0.1:7000?service=echo --listen tcp://127.0.0.1:7013?service=daytime \
            --listen tcp://127.0.0.1:7001?service=upper --listen udp://127.0.0.1:7000?service=echo \
            --listen udp://127.0.0.1:7013?service=daytime --mode event

.PHONY: run test deps build build-release test-swift test-daemon clean

## Installs Debian's libev-dev (the C library) and pytest (the daemon tests' runner) when missing.
deps:
	@if [ ! -f /usr/include/ev.h ]; then \
	    echo "installing libev-dev"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq libev-dev; \
	fi
	@python3 -c "import pytest" 2>/dev/null || python3 -m pip install -q pytest

build: deps
	swift build $(SWIFT_BUILD_FLAGS)

build-release: deps
	swift build -c release $(SWIFT_BUILD_FLAGS)

run: build-release
	.build/release/evserved $(RUN_ARGS)

test: build test-swift test-daemon

test-swift:
	swift test $(SWIFT_BUILD_FLAGS)

test-daemon:
	EVSERVED=$(CURDIR)/.build/debug/evserved python3 -m pytest -q Tests/daemon

clean:
	rm -rf .build
