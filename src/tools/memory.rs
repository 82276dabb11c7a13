//! What a benchmark process holds in memory, read from `/proc/self`: the
//! resident pages of each file it has mapped under a directory (a sealed
//! segment's files), so a mode's serving memory is counted per file.

use std::collections::BTreeMap;
use std::path::Path;

/// Resident bytes (`Rss` in `/proc/self/smaps`) of every mapping of a file
/// under `dir`, summed per file name. Empty where `/proc` is unavailable.
pub fn resident_by_file(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return out;
    };
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let mut current: Option<String> = None;
    for line in smaps.lines() {
        let mut parts = line.split_whitespace();
        let first = parts.next().unwrap_or("");
        // A mapping's header line starts with its address range.
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            current = line
                .split_whitespace()
                .nth(5)
                .map(Path::new)
                .filter(|p| p.starts_with(&dir))
                .and_then(|p| p.file_name())
                .map(|f| f.to_string_lossy().into_owned());
        } else if first == "Rss:"
            && let (Some(file), Some(kb)) =
                (&current, parts.next().and_then(|v| v.parse::<u64>().ok()))
        {
            *out.entry(file.clone()).or_insert(0) += kb * 1024;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_touched_pages_of_a_mapped_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        std::fs::write(&p, vec![7u8; 1 << 20]).unwrap();
        let f = std::fs::File::open(&p).unwrap();
        // SAFETY: the file is ours and nothing writes it while mapped.
        let map = unsafe { memmap2::Mmap::map(&f) }.unwrap();
        let sum: u64 = map.iter().step_by(4096).map(|&b| u64::from(b)).sum();
        assert_eq!(sum, 7 * 256);
        let got = resident_by_file(dir.path());
        assert_eq!(got.get("x.bin").copied(), Some(1 << 20), "{got:?}");
    }
}
