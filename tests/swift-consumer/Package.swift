// swift-tools-version:6.0
// A package that depends on spfs-autostart the way another project does: by git URL and
// version, with the product `SpfsAutostart`. It proves that the root package can be depended
// on: SwiftPM refuses `unsafeFlags` in such a dependency (it accepts them in a path or branch
// dependency, so those would prove nothing), and builds only the targets the product needs.
//
// The URL is this clone's own package, published by `scripts/test-swift` (working tree
// included) as a one-commit git repository tagged 1.0.0 under `.published/`; see there for
// the linker search path on Linux.
import PackageDescription

let published = "\(Context.packageDirectory)/.published/spfs-autostart"

let package = Package(
    name: "SwiftConsumer",
    platforms: [.macOS(.v14)],
    dependencies: [.package(url: "file://\(published)", from: "1.0.0")],
    targets: [
        .executableTarget(
            name: "swift-consumer",
            // Every library product, so that SwiftPM checks the targets of each.
            dependencies: [
                .product(name: "SpfsAutostart", package: "spfs-autostart"),
                .product(name: "SpfsMenuCore", package: "spfs-autostart"),
            ],
            path: "Sources/swift-consumer",
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
)
