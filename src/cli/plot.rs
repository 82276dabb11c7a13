//! The histogram PNG of `vidx calibrate`: per model (image, face) the
//! distances of same-series and different-series pairs, each normalised to
//! its own tallest bin, with the chosen threshold (and the image core
//! threshold) drawn across. Drawn pixel by pixel with a small built-in
//! font, and written with the `png` crate.

use std::path::Path;

use anyhow::Context;

use crate::pb;

const W: usize = 900;
const PANEL_H: usize = 300;
const MARGIN: usize = 40;
const SAME: [u8; 3] = [40, 110, 200];
const DIFF: [u8; 3] = [230, 120, 30];
const INK: [u8; 3] = [20, 20, 20];
const GRID: [u8; 3] = [200, 200, 200];

/// 3×5 glyphs: five rows of three bits, top row first.
fn glyph(c: char) -> [u8; 5] {
    match c.to_ascii_uppercase() {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '=' => [0, 7, 0, 7, 0],
        '-' => [0, 0, 7, 0, 0],
        '/' => [1, 1, 2, 4, 4],
        '(' => [1, 2, 2, 2, 1],
        ')' => [4, 2, 2, 2, 4],
        'A' => [2, 5, 7, 5, 5],
        'B' => [6, 5, 6, 5, 6],
        'C' => [7, 4, 4, 4, 7],
        'D' => [6, 5, 5, 5, 6],
        'E' => [7, 4, 6, 4, 7],
        'F' => [7, 4, 6, 4, 4],
        'G' => [7, 4, 5, 5, 7],
        'H' => [5, 5, 7, 5, 5],
        'I' => [7, 2, 2, 2, 7],
        'J' => [1, 1, 1, 5, 7],
        'K' => [5, 5, 6, 5, 5],
        'L' => [4, 4, 4, 4, 7],
        'M' => [5, 7, 7, 5, 5],
        'N' => [6, 5, 5, 5, 5],
        'O' => [7, 5, 5, 5, 7],
        'P' => [7, 5, 7, 4, 4],
        'Q' => [7, 5, 5, 7, 1],
        'R' => [7, 5, 6, 5, 5],
        'S' => [7, 4, 7, 1, 7],
        'T' => [7, 2, 2, 2, 2],
        'U' => [5, 5, 5, 5, 7],
        'V' => [5, 5, 5, 5, 2],
        'W' => [5, 5, 7, 7, 5],
        'X' => [5, 5, 2, 5, 5],
        'Y' => [5, 5, 2, 2, 2],
        'Z' => [7, 1, 2, 4, 7],
        _ => [0; 5],
    }
}

/// An RGB canvas.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Canvas {
        Canvas {
            w,
            h,
            px: vec![255; w * h * 3],
        }
    }

    fn set(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if x < self.w && y < self.h {
            let i = (y * self.w + x) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    fn rect(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, c: [u8; 3]) {
        for y in y0..y1 {
            for x in x0..x1 {
                self.set(x, y, c);
            }
        }
    }

    /// Text at (x, y), glyphs scaled by `s`.
    fn text(&mut self, x: usize, y: usize, s: usize, t: &str, c: [u8; 3]) {
        for (k, ch) in t.chars().enumerate() {
            let g = glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..3 {
                    if bits & (4 >> col) != 0 {
                        let (gx, gy) = (x + k * 4 * s + col * s, y + row * s);
                        self.rect(gx, gy, gx + s, gy + s, c);
                    }
                }
            }
        }
    }

    /// A vertical line at x from y0 to y1, dashed if asked.
    fn vline(&mut self, x: usize, y0: usize, y1: usize, c: [u8; 3], dashed: bool) {
        for y in y0..y1 {
            if !dashed || (y / 6) % 2 == 0 {
                self.set(x, y, c);
                self.set(x + 1, y, c);
            }
        }
    }
}

/// One panel: the two histograms of `t` with its threshold, at `top`.
fn panel(cv: &mut Canvas, top: usize, title: &str, t: &pb::ThresholdChoice) {
    let (x0, x1) = (MARGIN, W - MARGIN);
    let (y0, y1) = (top + 40, top + PANEL_H - 30);
    cv.text(x0, top + 10, 3, title, INK);
    let bins = t.same_series.len().max(t.different_series.len());
    if bins == 0 || t.histogram_to <= t.histogram_from {
        cv.text(x0, y0 + 40, 3, "NO LABELLED PAIRS", INK);
        return;
    }
    let width = (x1 - x0) as f32;
    let at = |d: f32| {
        x0 + ((d - t.histogram_from) / (t.histogram_to - t.histogram_from) * width) as usize
    };
    // Axis, and a tick every 0.1.
    cv.rect(x0, y1, x1, y1 + 2, INK);
    let mut tick = (t.histogram_from * 10.0).ceil() / 10.0;
    while tick <= t.histogram_to + 1e-6 {
        let x = at(tick);
        cv.rect(x, y0, x + 1, y1, GRID);
        cv.text(x.saturating_sub(8), y1 + 8, 2, &format!("{tick:.1}"), INK);
        tick += 0.1;
    }
    let bw = (x1 - x0) / bins;
    let height = (y1 - y0) as f64;
    for (hist, colour, offset) in [
        (&t.same_series, SAME, 0),
        (&t.different_series, DIFF, bw / 2),
    ] {
        let top_count = hist.iter().copied().max().unwrap_or(0).max(1) as f64;
        for (b, &n) in hist.iter().enumerate() {
            let h = (n as f64 / top_count * height) as usize;
            let bx = x0 + b * bw + offset;
            cv.rect(bx, y1 - h, bx + (bw / 2).max(1), y1, colour);
        }
    }
    if t.core_threshold > 0.0 && t.core_threshold < t.threshold {
        cv.vline(at(t.core_threshold), y0, y1, INK, true);
    }
    cv.vline(at(t.threshold), y0, y1, INK, false);
    let label = format!(
        "T={:.3}{}",
        t.threshold,
        if t.calibrated { "" } else { " (DEFAULT)" }
    );
    cv.text((at(t.threshold) + 6).min(x1 - 120), y0, 2, &label, INK);
}

/// Draws the calibration's histograms (image above, face below) to `path`.
pub fn write_histograms(path: &Path, cal: &pb::CalibrateResponse) -> anyhow::Result<()> {
    let panels = 1 + cal.face.is_some() as usize;
    let mut cv = Canvas::new(W, 40 + panels * PANEL_H);
    cv.rect(MARGIN, 12, MARGIN + 18, 24, SAME);
    cv.text(MARGIN + 24, 12, 2, "SAME SERIES", INK);
    cv.rect(MARGIN + 200, 12, MARGIN + 218, 24, DIFF);
    cv.text(
        MARGIN + 224,
        12,
        2,
        "DIFFERENT SERIES (EACH SCALED TO ITS TALLEST BIN)",
        INK,
    );
    if let Some(img) = &cal.image {
        panel(&mut cv, 40, "IMAGE DISTANCE", img);
    }
    if let Some(face) = &cal.face {
        panel(&mut cv, 40 + PANEL_H, "FACE DISTANCE", face);
    }
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), cv.w as u32, cv.h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc
        .write_header()
        .with_context(|| format!("writing {}", path.display()))?;
    w.write_image_data(&cv.px)
        .with_context(|| format!("writing {}", path.display()))?;
    w.finish()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
