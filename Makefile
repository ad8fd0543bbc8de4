# Thin wrapper around CMake. `make` builds, `make test` builds and runs the test suite,
# `make demo` runs the end-to-end demo, `make sanitize` runs the suite under ASan+UBSan,
# `make tsan` runs the threaded tests under ThreadSanitizer,
# `make fuzz-smoke` builds the libFuzzer targets with clang and runs each briefly, `make fuzz-long`
# runs each for FUZZ_SECONDS (600) before a stop that touched a reader, `make install PREFIX=/opt/embr`
# installs into PREFIX (default: CMake's, /usr/local), under DESTDIR when set (staged installs).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
ifeq ($(EMBR_WERROR),1)
CMAKE_FLAGS += -DEMBR_WERROR=ON
endif

.PHONY: all build test demo sanitize tsan fuzz fuzz-smoke fuzz-long install clean

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

# ThreadSanitizer over the tests that run library calls on several threads. Built with clang so
# that OpenMP is LLVM's runtime, whose Archer tool (libarcher, from libomp-dev) tells TSan about
# OpenMP's barriers and locks; GCC's libgomp would give false reports. TSan ignores memory
# accesses inside the uninstrumented runtimes (libomp, OpenBLAS); nothing of embr is suppressed.
TSAN_TESTS = concurrency collection knn w2v bpe
# ... and the threaded cases of test_index (tests/CMakeLists.txt names them tsan_index_*).
ARCHER = $(dir $(realpath $(shell command -v clang)))../lib/libarcher.so
tsan:
	CC=clang cmake -S . -B $(BUILD)-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBR_TSAN=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD)-tsan -j$(JOBS) --target $(addprefix test_,$(TSAN_TESTS) index)
	test -f $(ARCHER) || { echo "make tsan: $(ARCHER) not found (install libomp-dev)"; exit 1; }
	cd $(BUILD)-tsan && OMP_TOOL_LIBRARIES=$(ARCHER) TSAN_OPTIONS="ignore_noninstrumented_modules=1 second_deadlock_stack=1" \
	  ctest --output-on-failure -j$(JOBS) -R '^($(subst $(eval) ,|,$(strip $(TSAN_TESTS) tsan_index_.*)))$$'

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
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(BUILD)-fuzz
