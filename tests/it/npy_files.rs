//! `.npy` files against references the reader did not make: the committed
//! demo set (`data-samples/`) must load to exactly the values the former
//! hand-written reader produced, and small files written by NumPy itself
//! (`tests/data/npy/`, made with `np.save` by numpy 2.4) must read to their
//! values, be rewritten byte for byte, or be refused with the file named.

use std::path::{Path, PathBuf};

use vidx::io::npy::{Dtype, NpyError, NpyWriter, read_matrix, write_matrix};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// CRC-32C of the matrix's `f32` values, little-endian, in row order.
fn fingerprint(data: &[f32]) -> u32 {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    crc32c::crc32c(&bytes)
}

/// Every `.npy` of `data-samples/` loads to the same `f32` values as before
/// the switch to `npyz`. The expected shapes and fingerprints were computed
/// with the hand-written reader (commit c616300) and, independently, with
/// `np.load(f).astype('<f4').tobytes()`; both gave these numbers.
#[test]
fn data_samples_load_to_the_same_values() {
    let expected = [
        ("data-samples/images.npy", 1690, 512, 0xcb23_bfdf),
        ("data-samples/faces.npy", 1675, 512, 0x608f_7268),
        ("data-samples/seized/images.npy", 453, 512, 0x8518_b563),
        ("data-samples/seized/faces.npy", 448, 512, 0xf71f_dfd1),
    ];
    for (file, rows, cols, crc) in expected {
        let m = read_matrix(&repo(file)).expect(file);
        assert_eq!((m.rows, m.cols), (rows, cols), "{file}");
        assert_eq!(m.data.len(), rows * cols, "{file}");
        assert_eq!(fingerprint(&m.data), crc, "{file}: values changed");
    }
}

/// The values NumPy stored in the fixtures: `arange(12) * 0.25 - 1.5` as 3 x 4,
/// exact in every float width.
fn fixture_values() -> Vec<f32> {
    (0..12).map(|i| i as f32 * 0.25 - 1.5).collect()
}

#[test]
fn numpy_files_read_in_every_float_width() {
    for name in ["f32", "f16", "f64", "f32_big_endian"] {
        let m = read_matrix(&repo(&format!("tests/data/npy/{name}.npy"))).expect(name);
        assert_eq!((m.rows, m.cols), (3, 4), "{name}");
        assert_eq!(m.data, fixture_values(), "{name}");
    }
}

#[test]
fn written_files_are_byte_identical_to_numpys() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (dtype, name) in [(Dtype::F32, "f32"), (Dtype::F16, "f16")] {
        let ours = dir.path().join(format!("{name}.npy"));
        // Row by row, as `vidx gen` writes.
        let mut w = NpyWriter::create(&ours, 3, 4, dtype).expect("create");
        for row in fixture_values().chunks(4) {
            w.write_row(row).expect("row");
        }
        w.finish().expect("finish");
        let numpy = std::fs::read(repo(&format!("tests/data/npy/{name}.npy"))).expect("fixture");
        assert_eq!(std::fs::read(&ours).expect("ours"), numpy, "{name}");

        let whole = dir.path().join(format!("{name}-whole.npy"));
        write_matrix(&whole, 3, 4, &fixture_values(), dtype).expect("write");
        assert_eq!(std::fs::read(&whole).expect("whole"), numpy, "{name}");
    }
}

#[test]
fn unloadable_numpy_files_are_refused_by_name() {
    let cases = [
        ("fortran_order", "Fortran-order"),
        (
            "three_d",
            "expected a 2-D array (rows, cols), found shape [3, 2, 2]",
        ),
        ("int64", "unsupported dtype '<i8'"),
        (
            "truncated",
            "truncated: header announces 48 data bytes, file holds 43",
        ),
    ];
    for (name, want) in cases {
        let path = repo(&format!("tests/data/npy/{name}.npy"));
        let e = read_matrix(&path).expect_err(name);
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("{}: ", path.display())),
            "{name}: {msg}"
        );
        assert!(msg.contains(want), "{name}: {msg}");
    }
    // A file that is not an .npy at all (this test's own source).
    let path = repo("tests/it/npy_files.rs");
    let e = read_matrix(&path).expect_err("not npy");
    assert!(matches!(e, NpyError::BadHeader { .. }), "{e}");
    assert!(e.to_string().contains("npy_files.rs"), "{e}");
}
