#!/usr/bin/env bash
# Installs the built tree into temporary prefixes — `cmake --install --prefix`, `make install
# PREFIX=`, and a `make install DESTDIR=` staging tree moved elsewhere — and checks each one the way a
# user of the library would: `pkg-config --cflags --libs embr` (PKG_CONFIG_PATH into the prefix)
# must build and run a small external C program against the shared library, and
# `pkg-config --static` against the static one; the installed tool must run.
# Usage: test_install.sh SOURCE_DIR BUILD_DIR (reuses the build; nothing is recompiled).
set -u
src=$1
build=$2
for tool in pkg-config make cmake; do
  command -v "$tool" >/dev/null || { echo "skipped: $tool not installed"; exit 77; }
done
. "$(dirname "$0")/cli_lib.sh"

# The build's own compiler and sanitizer flags: an ASan build's library needs the runtime linked.
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
[ -n "$cc" ] || cc=cc
san=()
grep -q '^EMBR_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" && san=(-fsanitize=address,undefined)

cat >"$T/prog.c" <<'C'
/* An external program: nearest neighbours of a query among four points, and an error message. */
#include <embr/embr.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  const float base[8] = {0, 0, 10, 0, 0, 10, 3, 4}; /* four 2-D points */
  const float query[2] = {2.5f, 3.5f};
  float dist[2];
  int64_t ids[2];
  if (embr_knn(EMBR_METRIC_L2, base, 4, 2, query, 1, 2, 2, 2, dist, ids, NULL) != 0) {
    fprintf(stderr, "%s\n", embr_last_error());
    return 1;
  }
  /* Nearest: (3,4) at 0.25+0.25 = 0.5, then (0,0) at 6.25+12.25 = 18.5. */
  if (ids[0] != 3 || ids[1] != 0 || dist[0] != 0.5f || dist[1] != 18.5f) {
    fprintf(stderr, "wrong result: %lld %g %lld %g\n", (long long)ids[0], dist[0], (long long)ids[1], dist[1]);
    return 1;
  }
  embr_matrix m = EMBR_MATRIX_INIT;
  if (embr_matrix_read("no-such-file.npy", EMBR_FORMAT_AUTO, &m) == 0 ||
      strstr(embr_last_error(), "no-such-file.npy") == NULL) {
    fprintf(stderr, "missing file not reported: %s\n", embr_last_error());
    return 1;
  }
  printf("embr %s ok\n", embr_version());
  return 0;
}
C

# Checks the installed tree at $1 (a prefix as the user sees it).
check_prefix() {
  local prefix=$1 what=$2
  local pc
  pc=$(find "$prefix" -name embr.pc -path '*/pkgconfig/*' | head -n 1)
  if [ -z "$pc" ]; then fail "$what: no embr.pc under $prefix"; return; fi
  local libdir
  libdir=$(dirname "$(dirname "$pc")")
  for f in "$prefix/bin/embr" "$prefix/include/embr/embr.h" "$libdir/libembr.a" "$libdir/libembr.so"; do
    [ -e "$f" ] || fail "$what: $f not installed"
  done
  export PKG_CONFIG_PATH=$libdir/pkgconfig
  # The .pc must resolve to where the files are, not to the configure-time prefix.
  local got_prefix got_libdir
  got_prefix=$(pkg-config --variable=prefix embr)
  got_libdir=$(pkg-config --variable=libdir embr)
  if [ "$(cd "$got_prefix" 2>/dev/null && pwd -P)" != "$(cd "$prefix" && pwd -P)" ]; then
    fail "$what: pkg-config prefix is '$got_prefix', expected $prefix"
  fi
  if [ "$(cd "$got_libdir" 2>/dev/null && pwd -P)" != "$(cd "$libdir" && pwd -P)" ]; then
    fail "$what: pkg-config libdir is '$got_libdir', expected $libdir"
  fi
  [ "$(pkg-config --modversion embr)" = "$("$prefix/bin/embr" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1)" ] ||
    fail "$what: pkg-config --modversion $(pkg-config --modversion embr) differs from embr --version"

  # Shared: the program must load the prefix's libembr.so.
  # shellcheck disable=SC2046
  if ! "$cc" "${san[@]}" -o "$T/prog_shared" "$T/prog.c" $(pkg-config --cflags --libs embr) 2>"$T/cc.err"; then
    fail "$what: shared build failed: $(head -c 600 "$T/cc.err")"
  elif ! LD_LIBRARY_PATH=$libdir "$T/prog_shared" >"$T/out" 2>&1 || ! grep -q '^embr .* ok$' "$T/out"; then
    fail "$what: shared program failed: $(head -c 300 "$T/out")"
  elif ! LD_LIBRARY_PATH=$libdir ldd "$T/prog_shared" | grep -q "$libdir/libembr.so"; then
    fail "$what: shared program does not use $libdir/libembr.so: $(LD_LIBRARY_PATH=$libdir ldd "$T/prog_shared" | grep embr)"
  fi

  # Static: --static must list every library libembr.a needs; -lembr is pinned to the archive.
  local libs
  libs=$(pkg-config --static --libs embr)
  libs=${libs/-lembr/-l:libembr.a}
  # shellcheck disable=SC2086
  if ! "$cc" "${san[@]}" -o "$T/prog_static" "$T/prog.c" $(pkg-config --static --cflags embr) $libs 2>"$T/cc.err"; then
    fail "$what: static build failed: $(head -c 600 "$T/cc.err")"
  elif ! "$T/prog_static" >"$T/out" 2>&1 || ! grep -q '^embr .* ok$' "$T/out"; then
    fail "$what: static program failed: $(head -c 300 "$T/out")"
  elif ldd "$T/prog_static" | grep -q libembr; then
    fail "$what: static program is linked against a shared libembr"
  fi

  "$prefix/bin/embr" --help >/dev/null 2>&1 || fail "$what: installed embr --help failed"
  unset PKG_CONFIG_PATH
}

# 1. cmake --install --prefix
if cmake --install "$build" --prefix "$T/cmake-prefix" >"$T/log" 2>&1; then
  check_prefix "$T/cmake-prefix" "cmake --install --prefix"
else
  fail "cmake --install failed: $(tail -n 5 "$T/log")"
fi

# 2. make install PREFIX= (the Makefile's wrapper; the build folder is reused, not reconfigured)
unset MAKEFLAGS MFLAGS
if make -C "$src" install BUILD="$build" PREFIX="$T/make-prefix" >"$T/log" 2>&1; then
  check_prefix "$T/make-prefix" "make install PREFIX="
else
  fail "make install PREFIX= failed: $(tail -n 5 "$T/log")"
fi

# 3. make install DESTDIR= stages under DESTDIR/PREFIX; the staged tree, moved, still works.
if make -C "$src" install BUILD="$build" PREFIX=/opt/embr DESTDIR="$T/stage" >"$T/log" 2>&1; then
  if [ -x "$T/stage/opt/embr/bin/embr" ]; then
    mv "$T/stage/opt/embr" "$T/moved"
    check_prefix "$T/moved" "make install DESTDIR= (moved)"
  else
    fail "make install DESTDIR=$T/stage PREFIX=/opt/embr put nothing in $T/stage/opt/embr"
  fi
  [ -e /opt/embr/bin/embr ] && [ /opt/embr/bin/embr -nt "$T/prog.c" ] && fail "DESTDIR install wrote to /opt/embr"
else
  fail "make install DESTDIR= failed: $(tail -n 5 "$T/log")"
fi

finish
