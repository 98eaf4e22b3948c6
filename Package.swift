// swift-tools-version:6.0
// The Swift side of spfs-autostart: the uniffi bindings (`SpfsAutostart`), the menu-bar app's
// model (`SpfsMenuCore`, plain Swift, tested on Linux), the adapter between them
// (`SpfsMenuLive`) and, on macOS only, the SwiftUI app (`SpfsMenu`).
//
// Other packages depend on this one and use the `SpfsAutostart` product. No target here uses
// `unsafeFlags` (SwiftPM refuses them in a dependency), so where the Rust library lives is
// not written in this manifest:
//   macOS: once `scripts/build-xcframework` (or `macos-app/build-app.sh`) has built
//     `macos-app/build/SpfsAutostartFFI.xcframework`, it is linked through a `binaryTarget`
//     and nothing more is needed.
//   Linux (and macOS without the xcframework): `cargo build -p spfs-autostart-ffi`, then give
//     the linker the library's directory, for example
//       swift build -Xlinker -L"$PWD/target/debug" -Xlinker -rpath -Xlinker "$PWD/target/debug"
//     `scripts/test-swift` does this, and builds and runs the tests.
import PackageDescription

#if os(macOS)
import Foundation

let xcframeworkPath = "macos-app/build/SpfsAutostartFFI.xcframework"
let haveXCFramework = FileManager.default.fileExists(
    atPath: "\(Context.packageDirectory)/\(xcframeworkPath)")
#else
let xcframeworkPath = ""
let haveXCFramework = false
#endif

// The C module over the uniffi header, and what linking it takes.
let ffiTarget: Target
let ffiLinkerSettings: [LinkerSetting]
if haveXCFramework {
    ffiTarget = .binaryTarget(name: "SpfsAutostartFFI", path: xcframeworkPath)
    // The static Rust library's system dependencies (`scripts/build-xcframework` prints the
    // full list, from `--print native-static-libs`).
    ffiLinkerSettings = [
        .linkedFramework("CoreFoundation"),
        .linkedFramework("CoreServices"),  // FSEvents, for `notify` (the state-dir watch)
        .linkedFramework("Security"),
        .linkedLibrary("iconv"),
    ]
} else {
    // The header and module map only; the shared library is found on the linker's search path.
    ffiTarget = .systemLibrary(name: "SpfsAutostartFFI", path: "swift/Sources/SpfsAutostartFFI")
    ffiLinkerSettings = [.linkedLibrary("spfs_autostart")]
}

/// Hand-written Swift: Swift 6 language mode (the tools version's default, said explicitly
/// beside the generated target's Swift 5).
let strictSwift: [SwiftSetting] = [.swiftLanguageMode(.v6)]

var targets: [Target] = [
    ffiTarget,
    // uniffi's generated Swift, alone in a target because it is written for Swift 5 mode.
    // `scripts/gen-bindings` writes it; `SpfsAutostart` re-exports it.
    .target(
        name: "SpfsAutostartBindings",
        dependencies: ["SpfsAutostartFFI"],
        path: "swift/Sources/SpfsAutostartBindings",
        swiftSettings: [.swiftLanguageMode(.v5)],
        linkerSettings: ffiLinkerSettings
    ),
    // What users import: the bindings plus the AsyncStream adapters.
    .target(
        name: "SpfsAutostart",
        dependencies: ["SpfsAutostartBindings"],
        path: "swift/Sources/SpfsAutostart",
        swiftSettings: strictSwift
    ),
    .target(
        name: "SpfsMenuCore",
        path: "swift/Sources/SpfsMenuCore",
        swiftSettings: strictSwift
    ),
    .target(
        name: "SpfsMenuLive",
        dependencies: ["SpfsAutostart", "SpfsMenuCore"],
        path: "swift/Sources/SpfsMenuLive",
        swiftSettings: strictSwift
    ),
    .testTarget(
        name: "SpfsMenuCoreTests",
        dependencies: ["SpfsMenuCore"],
        path: "swift/Tests/SpfsMenuCoreTests",
        swiftSettings: strictSwift
    ),
    .testTarget(
        name: "SpfsAutostartTests",
        dependencies: ["SpfsAutostart", "SpfsMenuCore", "SpfsMenuLive"],
        path: "swift/Tests/SpfsAutostartTests",
        swiftSettings: strictSwift
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
        path: "macos-app/Sources/SpfsMenu",
        swiftSettings: strictSwift
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
