# Thin wrapper over CMake. `make test` and `make demo` are the README's two commands.
BUILD ?= build
CUDA ?= auto
JOBS ?= $(shell nproc)

.PHONY: all deps configure build app test demo study clean

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -DCTGRAD_CUDA=$(CUDA) > $(BUILD).configure.log 2>&1 || (cat $(BUILD).configure.log; exit 1)

build: configure
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

# The ctgrad command alone (what the demo needs; the tests are not built).
app: configure
	@cmake --build $(BUILD) --target ctgrad -j $(JOBS) -- --no-print-directory

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: app
	@BUILD=$(BUILD) bash scripts/demo.sh

# The study's protocol (`ctgrad study`): reduced on 2 CPU cores; SIZE=512 DEVICE=cuda for the real one.
study: app
	@BUILD=$(BUILD) bash scripts/study.sh

clean:
	rm -rf $(BUILD) $(BUILD).configure.log
