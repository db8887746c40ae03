//! The labelled worst-frame picture: the panels (a row per plane: luma,
//! then chroma when asked) between a title band naming the inputs and a
//! band with the frame number, time and scores beside a colour legend of
//! the SSIM map. Text is an 8×8 bitmap font (`font8x8`), doubled on wide
//! panels.

use font8x8::UnicodeFonts;

use super::{Panels, palette};

/// Background of the bands.
const BAND: [u8; 3] = [24, 24, 24];
/// Text colour.
const INK: [u8; 3] = [235, 235, 235];
/// Secondary text colour (plane names, legend ticks).
const DIM: [u8; 3] = [170, 170, 170];

/// An RGB picture being drawn.
pub(super) struct Canvas {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        let mut rgb = vec![0u8; width * height * 3];
        for px in rgb.chunks_exact_mut(3) {
            px.copy_from_slice(&BAND);
        }
        Canvas { width, height, rgb }
    }

    fn put(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if x < self.width && y < self.height {
            let i = 3 * (y * self.width + x);
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Writes `text` from (`x`, `y`) at `scale`, clipped at `right`.
    fn text(&mut self, x: usize, y: usize, text: &str, scale: usize, c: [u8; 3], right: usize) {
        for (k, ch) in text.chars().enumerate() {
            let left = x + k * 8 * scale;
            if left + 8 * scale > right {
                return;
            }
            let glyph = font8x8::BASIC_FONTS
                .get(ch)
                .or_else(|| font8x8::BASIC_FONTS.get('?'))
                .unwrap_or([0; 8]);
            for (gy, bits) in glyph.iter().enumerate() {
                for gx in 0..8 {
                    if bits & (1 << gx) != 0 {
                        for dy in 0..scale {
                            for dx in 0..scale {
                                self.put(left + gx * scale + dx, y + gy * scale + dy, c);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Copies a row of panels (reference gray, distorted gray, heat map)
    /// with its top-left corner at `y`, each panel `slot` wide.
    fn panels(&mut self, p: &Panels, y: usize, slot: usize) {
        let colours: Vec<[u8; 3]> = (0..=255).map(palette).collect();
        for row in 0..p.height {
            for x in 0..p.width {
                let i = row * p.width + x;
                let g = p.reference[i];
                self.put(x, y + row, [g, g, g]);
                let g = p.distorted[i];
                self.put(slot + x, y + row, [g, g, g]);
                self.put(2 * slot + x, y + row, colours[p.heat[i] as usize]);
            }
        }
    }
}

/// What the bands say about one worst moment.
pub(super) struct Caption<'a> {
    pub reference: &'a str,
    pub distorted: &'a str,
    pub input: usize,
    pub rank: usize,
    pub frame: u64,
    pub time: f64,
    pub scores: Vec<(&'a str, f64)>,
}

/// A path's last component, as the bands name an input.
fn short(path: &str) -> &str {
    path.rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(path)
}

/// A score with as many decimals as its size calls for.
fn score(v: f64) -> String {
    if v.is_nan() {
        "n/a".to_string()
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// Words packed into lines of at most `chars` characters.
fn wrap(words: &[String], chars: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for w in words {
        match lines.last_mut() {
            Some(l) if l.len() + 2 + w.len() <= chars => {
                l.push_str("  ");
                l.push_str(w);
            }
            _ => lines.push(w.clone()),
        }
    }
    lines
}

/// The plane names of the panel rows, luma first.
const PLANES: [&str; 3] = ["Y", "Cb", "Cr"];

/// Draws the labelled picture of `rows` (luma, then the chroma planes if
/// any); `None` when there is nothing to draw.
pub(super) fn compose(rows: &[Panels], cap: &Caption<'_>) -> Option<Canvas> {
    let luma = rows.first()?;
    let slot = luma.width;
    let width = 3 * slot;
    let scale = if slot >= 400 { 2 } else { 1 };
    let pad = 3 * scale;
    let line = 10 * scale;
    let title = pad + line + pad;
    // the plane bands (chroma only: the title names the luma row)
    let plane_band = line + pad;
    let mut words = vec![
        format!("frame {}", cap.frame),
        format!("t={:.3} s", cap.time),
        format!("worst #{} of input {}", cap.rank, cap.input),
    ];
    words.extend(cap.scores.iter().map(|(k, v)| format!("{k} {}", score(*v))));
    let text_chars = (2 * slot).saturating_sub(2 * pad) / (8 * scale);
    let lines = wrap(&words, text_chars.max(1));
    let legend_lines = 3;
    let bottom = pad + line * lines.len().max(legend_lines) + pad;
    let panels_h: usize = rows
        .iter()
        .enumerate()
        .map(|(k, p)| p.height + if k > 0 { plane_band } else { 0 })
        .sum();
    let mut c = Canvas::new(width, title + panels_h + bottom);
    let chroma = if rows.len() > 1 { " (Y)" } else { "" };
    let names = [
        format!("reference{chroma}: {}", short(cap.reference)),
        format!("distorted{chroma}: {}", short(cap.distorted)),
        format!("SSIM map{chroma}"),
    ];
    for (k, n) in names.iter().enumerate() {
        c.text(k * slot + pad, pad, n, scale, INK, (k + 1) * slot);
    }
    let mut y = title;
    for (k, p) in rows.iter().enumerate() {
        if k > 0 {
            let name = PLANES.get(k).copied().unwrap_or("?");
            for (j, what) in ["reference", "distorted", "SSIM map"].iter().enumerate() {
                let label = format!("{what} ({name})");
                c.text(
                    j * slot + pad,
                    y + pad / 2,
                    &label,
                    scale,
                    DIM,
                    (j + 1) * slot,
                );
            }
            y += plane_band;
        }
        c.panels(p, y, slot);
        y += p.height;
    }
    let y0 = y + pad;
    for (k, l) in lines.iter().enumerate() {
        c.text(pad, y0 + k * line, l, scale, INK, 2 * slot);
    }
    legend(
        &mut c,
        2 * slot + pad,
        y0,
        slot.saturating_sub(2 * pad),
        scale,
    );
    Some(c)
}

/// The heat map's colour legend: a bar from SSIM 1 (left) to 0.5 and
/// below (right), its ticks named underneath.
fn legend(c: &mut Canvas, x: usize, y: usize, width: usize, scale: usize) {
    if width < 2 {
        return;
    }
    let line = 10 * scale;
    c.text(x, y, "SSIM", scale, DIM, x + width);
    let bar_y = y + line;
    for dx in 0..width {
        // the palette's index 1 (SSIM 1) to 255 (0.5 and below)
        let i = 1 + (dx * 254 + (width - 1) / 2) / (width - 1).max(1);
        let colour = palette(u8::try_from(i.min(255)).unwrap_or(255));
        for dy in 0..8 * scale {
            c.put(x + dx, bar_y + dy, colour);
        }
    }
    let ticks = ["1", "0.75", "<=0.5"];
    let label_y = bar_y + line;
    let w = |t: &str| t.len() * 8 * scale;
    c.text(x, label_y, ticks[0], scale, DIM, x + width);
    let mid = x + width / 2;
    c.text(
        mid.saturating_sub(w(ticks[1]) / 2),
        label_y,
        ticks[1],
        scale,
        DIM,
        x + width,
    );
    c.text(
        (x + width).saturating_sub(w(ticks[2])),
        label_y,
        ticks[2],
        scale,
        DIM,
        x + width,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_wrap_into_lines_that_fit() {
        let words: Vec<String> = ["frame 12", "t=0.480 s", "psnr_y 31.20", "ssim_y 0.9123"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let lines = wrap(&words, 22);
        assert_eq!(
            lines,
            ["frame 12  t=0.480 s", "psnr_y 31.20", "ssim_y 0.9123"]
        );
        assert!(lines.iter().all(|l| l.len() <= 22));
        assert_eq!(score(31.204), "31.20");
        assert_eq!(score(0.91234), "0.9123");
        assert_eq!(score(f64::NAN), "n/a");
        assert_eq!(short("a/b/c.mp4"), "c.mp4");
    }

    #[test]
    fn the_legend_runs_from_ssim_one_to_one_half() {
        let mut c = Canvas::new(120, 40);
        legend(&mut c, 10, 0, 100, 1);
        let at = |x: usize, y: usize| {
            let i = 3 * (y * c.width + x);
            [c.rgb[i], c.rgb[i + 1], c.rgb[i + 2]]
        };
        assert_eq!(at(10, 12), palette(1));
        assert_eq!(at(109, 12), palette(255));
        // text was drawn: some pixel of the tick line is ink
        assert!((0..120).any(|x| (20..28).any(|y| at(x, y) == DIM)));
    }
}
