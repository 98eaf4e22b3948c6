#!/usr/bin/env bash
# Builds "SPFS Menu.app": the Rust library for arm64 and x86_64, a universal xcframework
# over it, the SwiftUI app, and the bundle (Info.plist, bundled LaunchAgent, service binary),
# ad-hoc signed. macOS only.
#
# usage: macos-app/build-app.sh [--service-binary PATH] [--out DIR]
#   --service-binary PATH  bundle PATH as Contents/MacOS/spfs-fuse-macos and generate the
#                          LaunchAgent plist that runs it (also: SPFS_SERVICE_BINARY)
#   --out DIR              where to put the .app (default: macos-app/build)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/.." && pwd)"
out="${here}/build"
service_binary="${SPFS_SERVICE_BINARY:-}"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --service-binary)
            service_binary="${2:?--service-binary needs a path}"
            shift 2
            ;;
        --out)
            out="${2:?--out needs a directory}"
            shift 2
            ;;
        -h | --help)
            sed -n '2,10p' "${BASH_SOURCE[0]}"
            exit 0
            ;;
        *)
            echo "build-app.sh: unknown argument: $1" >&2
            exit 2
            ;;
    esac
done

if [[ "$(uname -s)" != "Darwin" ]]; then
    echo "build-app.sh: the menu-bar app needs macOS (Xcode, lipo, xcodebuild, codesign);" >&2
    echo "this is $(uname -s). On Linux, 'swift build' and 'swift test' cover the Swift logic." >&2
    exit 2
fi

for tool in cargo lipo xcodebuild swift codesign /usr/libexec/PlistBuddy; do
    if ! command -v "${tool}" > /dev/null; then
        echo "build-app.sh: ${tool} not found (install Xcode and Rust)" >&2
        exit 2
    fi
done

targets=(aarch64-apple-darwin x86_64-apple-darwin)
lib=libspfs_autostart.a
build="${here}/build"
mkdir -p "${build}" "${out}"

echo "==> Rust static library (${targets[*]})"
libs=()
for target in "${targets[@]}"; do
    rustup target add "${target}" > /dev/null 2>&1 || true
    cargo build --manifest-path "${root}/Cargo.toml" --release -p spfs-autostart-ffi --target "${target}"
    libs+=("${root}/target/${target}/release/${lib}")
done

# The system libraries the Rust static library needs (Package.swift links the usual ones).
echo "==> native static libs: $(cargo rustc --manifest-path "${root}/Cargo.toml" --release \
    -p spfs-autostart-ffi --target "${targets[0]}" --crate-type staticlib -- \
    --print native-static-libs 2>&1 | sed -n 's/.*native-static-libs: //p' | head -n 1)"

echo "==> universal library and xcframework"
universal="${build}/universal"
headers="${build}/headers"
rm -rf "${universal}" "${headers}" "${build}/SpfsAutostartFFI.xcframework"
mkdir -p "${universal}" "${headers}"
lipo -create "${libs[@]}" -output "${universal}/${lib}"
# The uniffi header, and a module map without the Linux one's `link "spfs_autostart"`: the
# xcframework hands SwiftPM the static library itself.
cp "${root}/swift/Sources/SpfsAutostartFFI/SpfsAutostartFFI.h" "${headers}/"
printf 'module SpfsAutostartFFI {\n    header "SpfsAutostartFFI.h"\n    export *\n}\n' \
    > "${headers}/module.modulemap"
xcodebuild -create-xcframework \
    -library "${universal}/${lib}" -headers "${headers}" \
    -output "${build}/SpfsAutostartFFI.xcframework"

echo "==> Swift app"
(cd "${root}" && swift build -c release --product SpfsMenu)
bin_dir="$(cd "${root}" && swift build -c release --product SpfsMenu --show-bin-path)"

echo "==> SPFS Menu.app"
app="${out}/SPFS Menu.app"
rm -rf "${app}"
mkdir -p "${app}/Contents/MacOS" "${app}/Contents/Resources"
cp "${bin_dir}/SpfsMenu" "${app}/Contents/MacOS/SpfsMenu"
cp "${here}/Resources/Info.plist" "${app}/Contents/Info.plist"

if [[ -n "${service_binary}" ]]; then
    if [[ ! -x "${service_binary}" ]]; then
        echo "build-app.sh: service binary ${service_binary} is not an executable file" >&2
        exit 2
    fi
    cp "${service_binary}" "${app}/Contents/MacOS/spfs-fuse-macos"
    cargo build --manifest-path "${root}/Cargo.toml" --release -p spfs-autostart-cli
    mkdir -p "${app}/Contents/Library/LaunchAgents"
    "${root}/target/release/spfs-autostart" agent print --mode always \
        --bundle-program Contents/MacOS/spfs-fuse-macos \
        > "${app}/Contents/Library/LaunchAgents/ai.spk.spfs-fuse-macos.plist"
    plutil -lint "${app}/Contents/Library/LaunchAgents/ai.spk.spfs-fuse-macos.plist"
else
    echo "    (no --service-binary: the app has no bundled service or LaunchAgent;" \
        "\"Keep service running\" will report it as not found)"
fi

plutil -lint "${app}/Contents/Info.plist"
codesign --force --sign - --deep "${app}"
codesign --verify --verbose "${app}"
echo "==> built ${app}"
