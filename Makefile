# Thin wrapper around CMake. `make` builds, `make test` builds and runs the test suite,
# `make demo` runs the end-to-end demo, `make sanitize` runs the suite under ASan+UBSan,
# `make tsan` runs the threaded tests under ThreadSanitizer,
# `make fuzz-smoke` builds the libFuzzer targets with clang and runs each briefly, `make fuzz-long`
# runs each for FUZZ_SECONDS (600) before a stop that touched a reader, `make install PREFIX=/opt/embr`
# installs into PREFIX (default: CMake's, /usr/local), under DESTDIR when set (staged installs).
# `make python` installs the Python package (python/) with pip into PYTHON's environment and
# `make python-test` runs its pytest suite (docs/python.md).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
ifeq ($(EMBR_WERROR),1)
CMAKE_FLAGS += -DEMBR_WERROR=ON
endif

.PHONY: all build test demo sanitize tsan fuzz fuzz-smoke fuzz-long install clean python python-test python-sanitize

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
TSAN_TESTS = concurrency collection knn w2v bpe multicrop
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

# The Python package: `pip install --no-build-isolation ./python` (offline: Debian's setuptools and
# numpy; python/setup.py builds libembr.a in $(BUILD) with CMake and links it into the extension).
# PYTHON defaults to a virtual environment in $(BUILD)/venv made from Debian's /usr/bin/python3
# with --system-site-packages, so Debian's numpy, faiss and gensim are visible and the system
# Python (externally managed, PEP 668) is left alone; PYTHON=/path/to/venv/bin/python installs
# into another environment.
VENV = $(BUILD)/venv
PYTHON ?= $(VENV)/bin/python
python:
	$(if $(filter $(VENV)/bin/python,$(PYTHON)),test -x $(VENV)/bin/python || /usr/bin/python3 -m venv --system-site-packages $(VENV))
	EMBR_BUILD_DIR="$(abspath $(BUILD))" JOBS=$(JOBS) $(PYTHON) -m pip install --no-build-isolation --no-index --no-deps -q ./python

# The tests compare the package with the embr tool (python/tests/test_cli.py): built here if missing.
python-test: python
	cmake --build $(BUILD) --target embr -j$(JOBS)
	cd python/tests && EMBR_CLI="$(abspath $(BUILD))/embr" OMP_NUM_THREADS=2 $(abspath $(PYTHON)) -m pytest -q -p no:cacheprovider .

# The Python package's tests with the extension and libembr under AddressSanitizer + UBSan: the
# instrumented library of `make sanitize` ($(BUILD)-asan), its own venv; the runtime is preloaded
# because the interpreter is not instrumented, and leak checking is off (CPython and NumPy keep
# their allocations to the end). Not part of CI's time budget: run before a release (~3 min quiet).
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
python-sanitize:
	cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBR_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD)-asan -j$(JOBS) --target embr
	test -x $(BUILD)-asan/venv/bin/python || /usr/bin/python3 -m venv --system-site-packages $(BUILD)-asan/venv
	CFLAGS="$(SAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" EMBR_BUILD_DIR="$(abspath $(BUILD)-asan)" JOBS=$(JOBS) \
	  $(BUILD)-asan/venv/bin/python -m pip install --no-build-isolation --no-index --no-deps -q ./python
	cd python/tests && LD_PRELOAD="$$(gcc -print-file-name=libasan.so):$$(gcc -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 EMBR_CLI="$(abspath $(BUILD))-asan/embr" \
	  OMP_NUM_THREADS=2 $(abspath $(BUILD))-asan/venv/bin/python -m pytest -q -p no:cacheprovider .

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(BUILD)-fuzz
