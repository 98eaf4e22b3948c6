#!/usr/bin/env bash
# Build tests/c/test_ffi.c twice: linked to the shared and to the static
# library. usage: tests/c/build.sh LIB_DIR OUT_DIR
# (scripts/test-ffi builds the library and runs the binaries under valgrind.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
lib_dir="$(cd "$1" && pwd)"
out_dir="$2"
mkdir -p "$out_dir"
cflags=(-Wall -Wextra -Werror -std=c11 -g -pthread -I "$root/include")
cc "${cflags[@]}" -o "$out_dir/test_ffi_shared" "$root/tests/c/test_ffi.c" \
    -L "$lib_dir" -lspfs_autostart -Wl,-rpath,"$lib_dir"
# What Rust's staticlib needs from the system on Linux
# (`cargo rustc -- --print native-static-libs`).
cc "${cflags[@]}" -o "$out_dir/test_ffi_static" "$root/tests/c/test_ffi.c" \
    "$lib_dir/libspfs_autostart.a" -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
# The header states the standards it supports (C99+, C++11+): it compiles
# cleanly and pedantically under each, and an older one stops at its #error
# naming the minimum rather than at a syntax error deep inside.
probe='#include "spfs_autostart.h"
typedef char result_is_32_bits[sizeof(spfs_autostart_result) == 4 ? 1 : -1];
typedef char state_is_32_bits[sizeof(spfs_autostart_state) == 4 ? 1 : -1];
int main(void) { return spfs_autostart_version() == 0; }'
for std in c99 c11 c17; do
    printf '%s\n' "$probe" | cc -Wall -Wextra -Werror -pedantic -std=$std -I "$root/include" \
        -x c -fsyntax-only -
done
if printf '%s\n' "$probe" | cc -std=c89 -I "$root/include" -x c -fsyntax-only - 2>"$out_dir/c89.err"; then
    echo "build.sh: the header compiled as C89; its #error guard is missing" >&2
    exit 1
fi
grep -q "needs C99 or newer" "$out_dir/c89.err" || { cat "$out_dir/c89.err" >&2; exit 1; }
if command -v c++ >/dev/null 2>&1; then
    for std in c++11 c++17 c++20; do
        printf '%s\n' "${probe/(void)/()}" |
            c++ -Wall -Wextra -Werror -pedantic -std=$std -I "$root/include" -x c++ -fsyntax-only -
    done
    if printf '%s\n' "$probe" | c++ -std=c++98 -I "$root/include" -x c++ -fsyntax-only - 2>"$out_dir/cxx98.err"; then
        echo "build.sh: the header compiled as C++98; its #error guard is missing" >&2
        exit 1
    fi
    grep -q "needs C++11 or newer" "$out_dir/cxx98.err" || { cat "$out_dir/cxx98.err" >&2; exit 1; }
fi
