# Thin wrapper over CMake. `make test` and `make demo` are the README's two commands.
BUILD ?= build
CUDA ?= auto
JOBS ?= $(shell nproc)

.PHONY: all deps configure build test demo clean

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -DCTGRAD_CUDA=$(CUDA) > $(BUILD).configure.log 2>&1 || (cat $(BUILD).configure.log; exit 1)

build: configure
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	@bash scripts/demo.sh

clean:
	rm -rf $(BUILD) $(BUILD).configure.log
