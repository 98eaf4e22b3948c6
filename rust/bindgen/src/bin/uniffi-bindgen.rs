//! The uniffi binding generator, built from the workspace's pinned uniffi so
//! the generated code always matches the library's scaffolding.

fn main() {
    uniffi::uniffi_bindgen_main()
}
