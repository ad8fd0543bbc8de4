"""Builds the embr package: the C extension embr._embr over libembr's public headers.

The library itself is built by the project's CMake build (the static library libembr.a, compiled
with -fPIC), so the extension runs the same code, flags and per-file SIMD kernels as the `embr`
tool. By default that is the source tree's `build/` folder (what `make` uses): it is configured
(Release) when it does not exist yet, and brought up to date (`cmake --build --target
embr_static`, incremental) on every build of the package. Environment:

  EMBR_SOURCE_DIR   the embr source tree (default: the folder above this one)
  EMBR_BUILD_DIR    the CMake build folder to use (default: EMBR_SOURCE_DIR/build)
  EMBR_WERROR=1     compile the extension with -Werror (CI)

Nothing is downloaded: `pip install --no-build-isolation ./python` uses Debian's setuptools,
numpy and the -dev packages scripts/install-deps.sh installs.
"""
import os
import shlex
import subprocess
import sys

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.environ.get("EMBR_SOURCE_DIR") or os.path.join(HERE, ".."))
BUILD = os.path.abspath(os.environ.get("EMBR_BUILD_DIR") or os.path.join(SRC, "build"))
# What libembr.a needs at link time (the same list as CMakeLists.txt's dependencies).
PKG_DEPS = ["openblas", "cairo", "fontconfig", "fftw3f", "lapacke", "zlib", "libutf8proc", "sqlite3",
            "libcjson", "libpng", "libjpeg"]


def run(cmd):
    print("embr setup.py:", " ".join(shlex.quote(c) for c in cmd), flush=True)
    subprocess.check_call(cmd)


def pkg_config(*args):
    return shlex.split(subprocess.check_output(["pkg-config", *args], text=True))


def optional_libs():
    """The optional libraries the CMake build found and compiled libembr.a against (oneDNN has no
    pkg-config file: CMake's cache names it)."""
    cache = {}
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        for line in f:
            name, sep, value = line.strip().partition("=")
            if sep and not name.startswith(("//", "#")):
                cache[name.split(":")[0]] = value
    dnnl = cache.get("DNNL_LIBRARY", "")
    if cache.get("EMBR_DNNL", "OFF").upper() in ("ON", "1", "TRUE", "YES") and \
            cache.get("EMBR_TSAN", "OFF").upper() not in ("ON", "1", "TRUE", "YES") and \
            cache.get("DNNL_INCLUDE_DIR", "").endswith("NOTFOUND") is False and os.path.exists(dnnl):
        return [dnnl]
    return []


class BuildWithLibrary(build_ext):
    """Builds (or updates) libembr.a with CMake before compiling the extension."""

    def run(self):
        if not os.path.exists(os.path.join(SRC, "CMakeLists.txt")):
            sys.exit(f"embr setup.py: no CMakeLists.txt in {SRC}: set EMBR_SOURCE_DIR to the embr source tree")
        if not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
            run(["cmake", "-S", SRC, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release"])
        jobs = os.environ.get("JOBS") or str(os.cpu_count() or 1)
        run(["cmake", "--build", BUILD, "--target", "embr_static", f"-j{jobs}"])
        lib = os.path.join(BUILD, "libembr.a")
        for ext in self.extensions:
            ext.extra_objects = [lib]
            ext.depends = [lib]
            ext.extra_link_args = optional_libs() + ext.extra_link_args
        super().run()


libs = pkg_config("--libs", *PKG_DEPS)
compile_args = ["-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers",
                "-fvisibility=hidden"]
if os.environ.get("EMBR_WERROR") == "1":
    compile_args.append("-Werror")

ext = Extension(
    "embr._embr",
    sources=["embr/_embr.c"],
    include_dirs=[os.path.join(SRC, "include"), numpy.get_include()],
    extra_compile_args=compile_args,
    extra_link_args=libs + ["-fopenmp", "-lpthread", "-lm", "-Wl,--exclude-libs,libembr.a"],
)

setup(
    name="embr",
    version="0.1.0",
    description="Embeddings and retrieval: exact and approximate search, collections, word vectors, t-SNE maps",
    packages=["embr"],
    package_data={"embr": ["py.typed", "*.pyi"]},
    ext_modules=[ext],
    cmdclass={"build_ext": BuildWithLibrary},
    python_requires=">=3.9",
    install_requires=["numpy"],
)
