//! Compiles `proto/vidx/v1/vidx.proto` with the vendored protoc, so a fresh
//! machine needs no system protobuf install.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing reads the env concurrently.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("vidx_descriptor.bin"))
        // Metadata doubles as the JSON-lines schema of `vidx ingest` and `vidx gen`.
        .type_attribute(
            "vidx.v1.Metadata",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default)]",
        )
        .compile_protos(&["proto/vidx/v1/vidx.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
