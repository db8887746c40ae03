//! Checks on inputs FFmpeg cannot check for us: raw video, whose picture
//! size and pixel format come from the user, and files FFmpeg would read
//! as something no one measures.

use std::io::Read;
use std::path::Path;

use ff::format::Pixel;
use ffmpeg_next as ff;

use super::format;
use crate::error::Error;

/// Demuxers of text art (FFmpeg picks `bin` for any `.bin` file): raw
/// video read through one of them is garbage, not a picture.
const TEXT_ART: [&str; 5] = ["bin", "tty", "xbin", "adf", "idf"];

/// Refuses a file FFmpeg chose (by its extension) to read as text art,
/// naming the options that read raw frames.
pub(super) fn refuse_text_art(label: &str, demuxer: &str, asked: bool) -> Result<(), Error> {
    if asked || !TEXT_ART.contains(&demuxer) {
        return Ok(());
    }
    Err(Error::input(
        label,
        format!(
            "FFmpeg reads this file as text art (demuxer '{demuxer}'), not video: for raw \
             frames give --input-format rawvideo --size WxH --pix-fmt FMT (or --input-format \
             {demuxer} to read it as text art)"
        ),
    ))
}

/// A hint for a file FFmpeg could not identify whose extension says it
/// holds raw frames (which carry no header to identify).
pub(super) fn unidentified_hint(label: &str) -> Option<&'static str> {
    let ext = Path::new(label).extension()?.to_str()?.to_ascii_lowercase();
    ["bin", "raw", "yuv", "rgb", "nv12", "y", "dat"]
        .contains(&ext.as_str())
        .then_some(
            " (raw frames carry no header: give --input-format rawvideo --size WxH --pix-fmt FMT)",
        )
}

/// Bytes of one `width`×`height` frame of `pixel`, packed as raw video.
fn frame_bytes(pixel: Pixel, width: u32, height: u32) -> Option<u64> {
    // SAFETY: a pure computation on a format and sizes; no pointers.
    let n =
        unsafe { ff::ffi::av_image_get_buffer_size(pixel.into(), width as i32, height as i32, 1) };
    (n > 0).then_some(n as u64)
}

/// What a raw file's size and first frame say about the size and pixel
/// format the user gave: warnings for what may be right (a size that is
/// not a whole number of frames: a cut capture, or a wrong `--size`), an
/// error for what cannot be (samples above the format's maximum: the file
/// is not in that format, and its PSNR would be negative).
pub(super) fn check(
    label: &str,
    path: &Path,
    pixel: Pixel,
    width: u32,
    height: u32,
) -> Result<Vec<String>, Error> {
    let mut notes = Vec::new();
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(notes);
    };
    let Some(frame) = frame_bytes(pixel, width, height) else {
        return Ok(notes);
    };
    if !meta.is_file() {
        return Ok(notes);
    }
    let fmt = format::name(pixel);
    let len = meta.len();
    if len % frame != 0 {
        notes.push(format!(
            "'{label}': {len} bytes is not a whole number of {width}x{height} {fmt} frames \
             ({frame} bytes each; {} frame(s) and {} bytes over): check --size and --pix-fmt",
            len / frame,
            len % frame
        ));
    }
    // the depth the descriptor gives (not only the planar formats vqm
    // measures natively); MSB-aligned formats (p010, p016, ...) keep their
    // samples in the high bits and are not range-checked
    let depth = format::facts(pixel).map_or(8, |f| f.depth);
    let msb_aligned = fmt.starts_with('p') && !fmt.starts_with("pal");
    let luma = width as usize * height as usize;
    let mut first = Vec::new();
    let wide = depth > 8 && fmt.ends_with("le") && !msb_aligned;
    let want = if wide { luma * 2 } else { luma };
    if std::fs::File::open(path)
        .and_then(|f| f.take(want as u64).read_to_end(&mut first))
        .is_err()
        || first.len() < want
    {
        return Ok(notes);
    }
    if wide && depth < 16 {
        let peak = (1u32 << depth) - 1;
        let over = first
            .chunks_exact(2)
            .filter(|s| u32::from(u16::from_le_bytes([s[0], s[1]])) > peak)
            .count();
        if over > 0 {
            return Err(Error::input(
                label,
                format!(
                    "{over} of the first frame's {luma} luma samples are above the {depth}-bit \
                     maximum {peak}: the file is not {fmt} (check --pix-fmt; 8-bit video is \
                     yuv420p)"
                ),
            ));
        }
    } else if depth == 8 && !msb_aligned && luma >= 64 && looks_wide(&first) {
        notes.push(format!(
            "'{label}': every second byte of the first frame is 0-3, as in 10-bit little-endian \
             samples read as 8-bit ones: check --pix-fmt (yuv420p10le?)"
        ));
    }
    Ok(notes)
}

/// Whether 8-bit samples look like the bytes of 10-bit little-endian ones:
/// every odd byte (a high byte) at most 3, while the even ones are not.
fn looks_wide(bytes: &[u8]) -> bool {
    let high_small = bytes.iter().skip(1).step_by(2).all(|b| *b <= 3);
    let low_big = bytes.iter().step_by(2).filter(|b| **b > 3).count();
    high_small && low_big * 4 > bytes.len() / 2
}

/// Whether FFmpeg refuses a picture of `w`×`h` as too large: it takes
/// only sizes with (W+128)·(H+128) under 2^31/8.
pub fn too_large(w: u64, h: u64) -> bool {
    (w + 128).saturating_mul(h + 128) >= (i32::MAX / 8) as u64
}

/// What [`too_large`] allows, said for a message.
pub const SIZE_LIMIT: &str = "FFmpeg takes pictures with (W+128)×(H+128) under 268,435,456, so 16255x16255 at most for a square one";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_art_demuxers_are_refused_unless_asked_for() {
        let e = refuse_text_art("a.bin", "bin", false).unwrap_err();
        assert!(e.to_string().contains("--input-format rawvideo"), "{e}");
        assert!(refuse_text_art("a.bin", "bin", true).is_ok());
        assert!(refuse_text_art("a.ts", "mpegts", false).is_ok());
        assert!(unidentified_hint("x/frames.BIN").is_some());
        assert!(unidentified_hint("a.ts").is_none());
        assert!(unidentified_hint("noext").is_none());
    }

    #[test]
    fn ten_bit_bytes_read_as_eight_bit_look_wide() {
        let wide: Vec<u8> = (0..256u32)
            .flat_map(|i| ((i * 4) as u16 % 1024).to_le_bytes())
            .collect();
        assert!(looks_wide(&wide));
        let narrow: Vec<u8> = (0..512u32).map(|i| (i * 7 % 256) as u8).collect();
        assert!(!looks_wide(&narrow));
        // black: every byte small, not evidence of anything
        assert!(!looks_wide(&[16u8; 512]));
    }
}
