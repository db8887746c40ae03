//! Why FFmpeg could not open a local file, when the file itself tells:
//! an MP4 whose `moov` box is missing, a picture over FFmpeg's size limit.

use std::path::Path;

use super::OpenOptions;

/// An ISO-BMFF file (starts with an `ftyp` box) with no top-level `moov`
/// box: an unfinished or truncated recording. The top-level boxes are
/// walked by their sizes, so a file whose `moov` is there (with damaged
/// tables inside, say) is not given this cause.
pub(super) fn is_mp4_without_moov(label: &str) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    // only a regular file is read here: a FIFO or device read by this
    // check would lose its data, or block in open(2) with no writer
    let Ok(meta) = std::fs::metadata(label) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    let Ok(mut f) = std::fs::File::open(label) else {
        return false;
    };
    let mut at = 0u64;
    // a bound on the boxes read: a real file has a handful at the top
    for n in 0..100_000 {
        let mut head = [0u8; 16];
        if f.seek(SeekFrom::Start(at)).is_err() || f.read_exact(&mut head[..8]).is_err() {
            break;
        }
        let kind = &head[4..8];
        if n == 0 && kind != b"ftyp" {
            return false;
        }
        if kind == b"moov" {
            return false;
        }
        let size = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
            // to the end of the file
            0 => break,
            // a 64-bit size follows the type
            1 => {
                if f.read_exact(&mut head[8..16]).is_err() {
                    break;
                }
                let mut large = [0u8; 8];
                large.copy_from_slice(&head[8..16]);
                u64::from_be_bytes(large)
            }
            s => u64::from(s),
        };
        if size < 8 {
            break;
        }
        at = at.saturating_add(size);
        if at >= meta.len() {
            break;
        }
    }
    at != 0
}

/// The picture size a local input says it has when FFmpeg would refuse
/// it as too large: a YUV4MPEG2 header's, or raw video's `video_size`.
pub(super) fn oversized(label: &str, options: &OpenOptions) -> Option<String> {
    let (w, h) = super::y4m::header_size(Path::new(label)).or_else(|| {
        let v = options.demuxer.iter().find(|(k, _)| k == "video_size")?;
        let (w, h) = v.1.split_once('x')?;
        Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
    })?;
    super::raw::too_large(w, h).then(|| {
        format!(
            "the picture size it gives, {w}x{h}, is over the limit: {}",
            super::raw::SIZE_LIMIT
        )
    })
}
