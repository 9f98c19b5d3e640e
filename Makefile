# Cairn's front door. `make run` and `make test` do all set-up on a fresh Debian 12 machine.
#
#   make run     install missing packages, build Release, start a single-node Cairn
#   make test    install missing packages, build with ASan+UBSan (warnings are errors), run every test
#   make build   Release binaries in build/bin/
#   make cluster build Release and start a local 3-member cluster (Ctrl-C stops it)
#   make bench   build Release and run the benchmarks
#   make bench-vs-etcd  build Release and compare Cairn with etcd 3.4 (~20 min; BENCH_VS_ETCD_ARGS=--quick for ~5)
#   make soak    build Release and run simulator seeds without end (Ctrl-C to stop)
#   make format  clang-format every source file

JOBS        ?= $(shell nproc)
RELEASE_DIR := build/release
TEST_DIR    := build/asan
BIN_DIR     := $(CURDIR)/build/bin
CTEST_ARGS  ?=

.PHONY: all deps npm-deps build run cluster bench-vs-etcd test bench soak format clean

all: build

deps:
	@scripts/install-deps

npm-deps: deps
	@scripts/install-npm-deps

$(RELEASE_DIR)/build.ninja: | deps
	cmake -S . -B $(RELEASE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_TESTS=OFF -DCAIRN_BIN_DIR=$(BIN_DIR)

build: deps $(RELEASE_DIR)/build.ninja
	cmake --build $(RELEASE_DIR) -j $(JOBS)

run: build
	$(BIN_DIR)/cairn

cluster: build
	scripts/local-cluster

$(TEST_DIR)/build.ninja: | deps
	cmake -S . -B $(TEST_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAIRN_SANITIZE=ON -DCAIRN_WERROR=ON

test: deps npm-deps $(TEST_DIR)/build.ninja
	cmake --build $(TEST_DIR) -j $(JOBS)
	cd $(TEST_DIR) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

BENCH_VS_ETCD_ARGS ?=
bench-vs-etcd: build
	scripts/bench-vs-etcd $(BENCH_VS_ETCD_ARGS)

bench: build
	$(BIN_DIR)/cairn-bench-wal
	$(BIN_DIR)/cairn-bench-core

# Seeds without end, from a random start so every soak explores new ground; each failure prints
# the command that replays it.
SOAK_START ?= $(shell od -An -N4 -tu4 /dev/urandom | tr -d ' ')
soak: build
	$(BIN_DIR)/cairn-sim --seeds 0 --seed-start $(SOAK_START) --quiet

format: deps
	find src bench tests -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf build
