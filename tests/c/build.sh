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
# The header also compiles as C++ (cbindgen's cpp_compat), where a C++
# compiler exists.
if command -v c++ >/dev/null 2>&1; then
    printf '#include "spfs_autostart.h"\nint main() { return spfs_autostart_version() == nullptr; }\n' |
        c++ -Wall -Wextra -Werror -std=c++17 -I "$root/include" -x c++ -fsyntax-only -
fi
