# Thin wrapper around CMake. `make` builds, `make test` builds and runs the test suite,
# `make demo` runs the end-to-end demo, `make sanitize` runs the suite under ASan+UBSan,
# `make fuzz-smoke` builds the libFuzzer targets with clang and runs each briefly, `make fuzz-long`
# runs each for FUZZ_SECONDS (600) before a stop that touched a reader, `make install PREFIX=/opt/embr`
# installs into PREFIX (default: CMake's, /usr/local), under DESTDIR when set (staged installs).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
ifeq ($(EMBR_WERROR),1)
CMAKE_FLAGS += -DEMBR_WERROR=ON
endif

.PHONY: all build test demo sanitize fuzz fuzz-smoke fuzz-long install clean

all: build

# A new build folder is configured for Release; an existing one keeps its own settings (so
# `make install BUILD=build-asan` installs that build rather than reconfiguring and rebuilding it).
build:
	cmake -S . -B $(BUILD) $(if $(wildcard $(BUILD)/CMakeCache.txt),,-DCMAKE_BUILD_TYPE=Release) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

demo: build
	./scripts/demo.sh $(BUILD)/embr

sanitize:
	cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBR_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD)-asan -j$(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j$(JOBS)

fuzz:
	CC=clang cmake -S . -B $(BUILD)-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBR_FUZZ=ON -DEMBR_SANITIZE=ON -DEMBR_BUILD_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build $(BUILD)-fuzz -j$(JOBS)

fuzz-smoke: fuzz
	./fuzz/smoke.sh $(BUILD)-fuzz 20

FUZZ_SECONDS ?= 600
fuzz-long: fuzz
	./fuzz/smoke.sh $(BUILD)-fuzz $(FUZZ_SECONDS)

PREFIX ?=
DESTDIR ?=
install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) $(if $(PREFIX),--prefix "$(PREFIX)")

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz
