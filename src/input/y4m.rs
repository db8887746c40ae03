//! Direct reading of YUV4MPEG2 files: each frame's planes are read from
//! the file straight into a pooled frame, one copy in all (through
//! FFmpeg's demuxer and raw decoder a frame is copied twice: into a
//! packet, then out of it).
//!
//! FFmpeg still opens the file and describes it (size, pixel format, rate,
//! range, interlacing); this path only takes over the frames, and only
//! when the file is exactly what it describes: a regular file, a header
//! line, then frames that are each `FRAME\n` and the planes, to the last
//! byte. Anything else (frame parameters, a cut or damaged file, a pipe,
//! demuxer options) stays with FFmpeg.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::frame::signature::SigAcc;
use crate::frame::{Frame, Samples};

/// The frame marker, without parameters.
const MARKER: &[u8; 6] = b"FRAME\n";

/// Where a YUV4MPEG2 file's frames are.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Byte offset of the first frame marker.
    pub data_offset: u64,
    /// Bytes of one frame's planes (marker excluded).
    pub frame_len: u64,
    /// Frames in the file.
    pub frames: u64,
}

/// The layout of `path` if it is a YUV4MPEG2 file whose frames are all
/// `FRAME\n` and `frame_len` bytes of planes, to its last byte.
pub fn probe(path: &Path, frame_len: u64) -> Option<Layout> {
    if frame_len == 0 || !cfg!(target_endian = "little") {
        return None;
    }
    // a FIFO or device is not opened here: that would block with no
    // writer, or eat data the demuxer needs
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let mut f = File::open(path).ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    // the header line: "YUV4MPEG2 " and tags, up to its newline
    let mut head = vec![0u8; 4096];
    let n = read_up_to(&mut f, &mut head).ok()?;
    let head = &head[..n];
    if !head.starts_with(b"YUV4MPEG2 ") {
        return None;
    }
    let eol = head.iter().position(|b| *b == b'\n')?;
    let data_offset = eol as u64 + 1;
    let first = head.get(eol + 1..eol + 1 + MARKER.len())?;
    if first != MARKER {
        return None;
    }
    let body = meta.len().checked_sub(data_offset)?;
    let stride = frame_len + MARKER.len() as u64;
    if body == 0 || body % stride != 0 {
        return None;
    }
    Some(Layout {
        data_offset,
        frame_len,
        frames: body / stride,
    })
}

/// The picture size a YUV4MPEG2 file's header gives (`W` and `H` tags),
/// if `path` is a regular file that starts with one.
pub fn header_size(path: &Path) -> Option<(u64, u64)> {
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let mut f = File::open(path).ok()?;
    let mut head = vec![0u8; 4096];
    let n = read_up_to(&mut f, &mut head).ok()?;
    let line = head[..n].split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line.strip_prefix(b"YUV4MPEG2 ")?).ok()?;
    let tag = |t: char| {
        line.split(' ')
            .find_map(|w| w.strip_prefix(t))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((tag('W')?, tag('H')?))
}

/// Reads until `buf` is full or the file ends; the bytes read.
fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads the frames of a probed file in order.
pub struct Reader {
    file: File,
    layout: Layout,
    next: u64,
}

/// Luma rows read per call while the signature is fed: the rows are still
/// in cache when they are summed.
const LUMA_ROWS_PER_READ: usize = 32;

impl Reader {
    /// Opens `path` at its first frame.
    pub fn open(path: &Path, layout: Layout) -> std::io::Result<Reader> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(layout.data_offset))?;
        Ok(Reader {
            file,
            layout,
            next: 0,
        })
    }

    /// Frames read so far.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Reads the next frame's planes into `out`, whose planes are already
    /// shaped for this input, and returns the luma signature's sums.
    /// `Ok(None)` at the end of the file; an error names the cause.
    pub fn read_into(&mut self, out: &mut Frame) -> Result<Option<SigAcc>, String> {
        if self.next >= self.layout.frames {
            return Ok(None);
        }
        let mut marker = [0u8; 6];
        self.file
            .read_exact(&mut marker)
            .map_err(|e| format!("read error: {e}"))?;
        if &marker != MARKER {
            return Err(format!(
                "frame {}: no FRAME marker where one belongs (damaged YUV4MPEG2 data)",
                self.next
            ));
        }
        let mut sig = SigAcc::default();
        for (i, plane) in out.planes.iter_mut().enumerate() {
            let w = plane.width.max(1);
            match &mut plane.samples {
                Samples::U8(v) => {
                    if i == 0 {
                        for rows in v.chunks_mut(w * LUMA_ROWS_PER_READ) {
                            self.file
                                .read_exact(rows)
                                .map_err(|e| format!("read error: {e}"))?;
                            rows.chunks(w).for_each(|r| sig.feed_u8(r));
                        }
                    } else {
                        self.file
                            .read_exact(v)
                            .map_err(|e| format!("read error: {e}"))?;
                    }
                }
                Samples::U16(v) => {
                    for rows in v.chunks_mut(w * LUMA_ROWS_PER_READ) {
                        // SAFETY: a u16 slice viewed as its bytes (twice as
                        // many, same memory, any bit pattern valid); the
                        // file's samples are little-endian, as this host
                        // (`probe` refuses other hosts).
                        let bytes = unsafe {
                            std::slice::from_raw_parts_mut(
                                rows.as_mut_ptr().cast::<u8>(),
                                rows.len() * 2,
                            )
                        };
                        self.file
                            .read_exact(bytes)
                            .map_err(|e| format!("read error: {e}"))?;
                        if i == 0 {
                            rows.chunks(w).for_each(|r| sig.feed_u16(r));
                        }
                    }
                }
            }
        }
        self.next += 1;
        Ok(Some(sig))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(bytes).expect("write");
        f
    }

    #[test]
    fn a_file_cut_after_probing_is_a_read_error_not_a_panic() {
        use crate::frame::Frame;
        let head = b"YUV4MPEG2 W4 H2 F25:1 Ip C444\n".to_vec();
        let frame = [MARKER.as_slice(), &[9u8; 24]].concat();
        let f = file_with(&[head, frame.clone(), frame].concat());
        let layout = probe(f.path(), 24).expect("two whole frames");
        // cut in the middle of the second frame's planes
        let len = std::fs::metadata(f.path()).expect("size").len();
        f.as_file().set_len(len - 5).expect("truncate");
        let mut r = Reader::open(f.path(), layout).expect("opens");
        let mut out = Frame::from_u8(vec![(4, 2, vec![0; 8]); 3]);
        assert!(matches!(r.read_into(&mut out), Ok(Some(_))));
        assert_eq!(out.planes[2].samples, Samples::U8(vec![9; 8]));
        let err = r.read_into(&mut out).expect_err("cut frame");
        assert!(err.starts_with("read error"), "{err}");
        // and a file gone before reading starts
        let gone = std::env::temp_dir().join("vqm-no-such-file.y4m");
        let layout = Layout {
            data_offset: 0,
            frame_len: 24,
            frames: 1,
        };
        assert!(Reader::open(&gone, layout).is_err());
    }

    #[test]
    fn probe_accepts_only_whole_plain_frames() {
        let head = b"YUV4MPEG2 W2 H2 F25:1 Ip A1:1 C444\n".to_vec();
        let frame = [MARKER.as_slice(), &[7u8; 12]].concat();
        let good = [head.clone(), frame.clone(), frame.clone()].concat();
        let f = file_with(&good);
        assert_eq!(
            probe(f.path(), 12),
            Some(Layout {
                data_offset: head.len() as u64,
                frame_len: 12,
                frames: 2
            })
        );
        // a cut last frame, frame parameters, a wrong frame size, another
        // format: all left to FFmpeg
        let cut = file_with(&good[..good.len() - 1]);
        assert_eq!(probe(cut.path(), 12), None);
        let params = [head.clone(), b"FRAME Ip\n".to_vec(), vec![7u8; 9]].concat();
        assert_eq!(probe(file_with(&params).path(), 12), None);
        assert_eq!(probe(f.path(), 11), None);
        assert_eq!(probe(file_with(b"RIFF....").path(), 12), None);
        assert_eq!(probe(file_with(&head).path(), 12), None);
    }
}
