// swift-tools-version:6.0
// The Swift side of spfs-autostart: the uniffi bindings (`SpfsAutostart`), the menu-bar app's
// model (`SpfsMenuCore`, plain Swift, tested on Linux), the adapter between them
// (`SpfsMenuLive`) and, on macOS only, the SwiftUI app (`SpfsMenu`).
//
// The Rust library must be built first:
//   Linux / macOS without the xcframework: `cargo build -p spfs-autostart-ffi` (and
//     `-p spfs-reference-service` for the tests), then `swift build` / `swift test`.
//     The library is found in `target/debug`; set SPFS_AUTOSTART_LIB_DIR to use another
//     directory (for example `target/release`).
//   macOS app: `macos-app/build-app.sh` builds `macos-app/build/SpfsAutostartFFI.xcframework`,
//     which this manifest then uses instead.
import Foundation
import PackageDescription

let packageRoot = Context.packageDirectory
let libDir = ProcessInfo.processInfo.environment["SPFS_AUTOSTART_LIB_DIR"]
    ?? "\(packageRoot)/target/debug"
let xcframeworkPath = "macos-app/build/SpfsAutostartFFI.xcframework"

// The C module over the uniffi header. On macOS, once `build-app.sh` has built the universal
// xcframework, that is used; everywhere else it is a system library whose module map
// (`swift/Sources/SpfsAutostartFFI/module.modulemap`) links `libspfs_autostart` from `libDir`.
let ffiTarget: Target
var ffiLinkerSettings: [LinkerSetting] = []
#if os(macOS)
let haveXCFramework = FileManager.default.fileExists(atPath: "\(packageRoot)/\(xcframeworkPath)")
#else
let haveXCFramework = false
#endif
if haveXCFramework {
    ffiTarget = .binaryTarget(name: "SpfsAutostartFFI", path: xcframeworkPath)
    // The static Rust library's system dependencies (build-app.sh prints the full list,
    // from `--print native-static-libs`).
    ffiLinkerSettings = [
        .linkedFramework("CoreFoundation"),
        .linkedFramework("Security"),
        .linkedLibrary("iconv"),
    ]
} else {
    ffiTarget = .systemLibrary(name: "SpfsAutostartFFI", path: "swift/Sources/SpfsAutostartFFI")
    // `-L` for the module map's `link "spfs_autostart"`, and an rpath so that tests find the
    // shared library at run time without LD_LIBRARY_PATH.
    ffiLinkerSettings = [
        .unsafeFlags(["-L", libDir, "-Xlinker", "-rpath", "-Xlinker", libDir]),
    ]
}

var targets: [Target] = [
    ffiTarget,
    .target(
        name: "SpfsAutostart",
        dependencies: ["SpfsAutostartFFI"],
        path: "swift/Sources/SpfsAutostart",
        // uniffi's generated Swift is not Swift 6 clean yet; the hand-written files here are
        // written to be, but share the target's language mode.
        swiftSettings: [.swiftLanguageMode(.v5)],
        linkerSettings: ffiLinkerSettings
    ),
    .target(
        name: "SpfsMenuCore",
        path: "swift/Sources/SpfsMenuCore"
    ),
    .target(
        name: "SpfsMenuLive",
        dependencies: ["SpfsAutostart", "SpfsMenuCore"],
        path: "swift/Sources/SpfsMenuLive"
    ),
    .testTarget(
        name: "SpfsMenuCoreTests",
        dependencies: ["SpfsMenuCore"],
        path: "swift/Tests/SpfsMenuCoreTests"
    ),
    .testTarget(
        name: "SpfsAutostartTests",
        dependencies: ["SpfsAutostart", "SpfsMenuCore", "SpfsMenuLive"],
        path: "swift/Tests/SpfsAutostartTests"
    ),
]

var products: [Product] = [
    .library(name: "SpfsAutostart", targets: ["SpfsAutostart"]),
    .library(name: "SpfsMenuCore", targets: ["SpfsMenuCore"]),
]

#if os(macOS)
targets.append(
    .executableTarget(
        name: "SpfsMenu",
        dependencies: ["SpfsMenuCore", "SpfsMenuLive"],
        path: "macos-app/Sources/SpfsMenu"
    )
)
products.append(.executable(name: "SpfsMenu", targets: ["SpfsMenu"]))
#endif

let package = Package(
    name: "SpfsAutostart",
    platforms: [.macOS(.v14)],
    products: products,
    targets: targets
)
