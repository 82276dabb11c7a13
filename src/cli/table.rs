//! What the command line prints for a person to read: tables whose values are
//! printed whole (an id is copied from here into the next command) in
//! columns as wide as their widest value, and byte counts in binary units
//! (`4.6 MiB`).

use comfy_table::{CellAlignment, Table as Inner, presets};

/// A plain table: a header line, then one line per row; two spaces between
/// columns, no borders.
pub struct Table {
    inner: Inner,
    right: Vec<usize>,
}

impl Table {
    /// A table with these column titles; the columns at the indices in
    /// `right` (numbers) are right-aligned.
    pub fn new(header: &[&str], right: &[usize]) -> Table {
        let mut inner = Inner::new();
        inner.load_style(presets::NOTHING);
        inner.set_header(header.to_vec());
        Table {
            inner,
            right: right.to_vec(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.inner.add_row(cells);
    }

    /// The table as text, without trailing spaces or a final newline.
    pub fn render(mut self) -> String {
        for (i, c) in self.inner.column_iter_mut().enumerate() {
            c.set_padding((0, 2));
            if self.right.contains(&i) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        self.inner.trim_fmt()
    }
}

/// A byte count in binary units: `0 B`, `1000 B`, `4.5 MiB`, `2.0 GiB`.
pub fn bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().iec().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_widest_value() {
        let long = "bf743afe1a54ea969a251502df3989ac1e1e353c#12";
        let mut t = Table::new(&["rank", "id", "distance"], &[0, 2]);
        t.row(vec!["1".into(), long.into(), "0.1271".into()]);
        t.row(vec!["10".into(), "x1".into(), "0.5".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[0],
            format!("rank  {:<w$}  distance", "id", w = long.len())
        );
        assert_eq!(lines[1], format!("   1  {long}    0.1271"));
        assert_eq!(
            lines[2],
            format!("  10  {:<w$}       0.5", "x1", w = long.len())
        );
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1000), "1000 B");
        assert_eq!(bytes(4_757_389), "4.5 MiB");
        assert_eq!(bytes(2_200_000_000), "2.0 GiB");
    }
}
