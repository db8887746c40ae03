//! Pixel-format decisions: which planar layout a source keeps or is
//! converted to, and how its planes map to record keys.

use ffmpeg_next::ffi;
use ffmpeg_next::format::Pixel;

/// The planar layout frames are delivered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// FFmpeg pixel format of the delivered planes.
    pub pixel: Pixel,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
}

/// The swscale algorithm that resizes a picture to the measured size
/// (`--scale-algo`, FFmpeg's names); always with accurate rounding and full
/// chroma interpolation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScaleAlgo {
    /// Bicubic (the default, VMAF's practice).
    #[default]
    Bicubic,
    /// Lanczos.
    Lanczos,
    /// Bilinear.
    Bilinear,
    /// Natural bicubic spline.
    Spline,
    /// Nearest neighbour.
    Neighbor,
}

impl ScaleAlgo {
    /// Every algorithm, by FFmpeg's name.
    pub const ALL: [ScaleAlgo; 5] = [
        ScaleAlgo::Bicubic,
        ScaleAlgo::Lanczos,
        ScaleAlgo::Bilinear,
        ScaleAlgo::Spline,
        ScaleAlgo::Neighbor,
    ];

    /// FFmpeg's name (`flags=` of its `scale` filter).
    pub fn name(self) -> &'static str {
        match self {
            ScaleAlgo::Bicubic => "bicubic",
            ScaleAlgo::Lanczos => "lanczos",
            ScaleAlgo::Bilinear => "bilinear",
            ScaleAlgo::Spline => "spline",
            ScaleAlgo::Neighbor => "neighbor",
        }
    }

    /// The algorithm FFmpeg calls `name`.
    pub fn from_name(name: &str) -> Option<ScaleAlgo> {
        ScaleAlgo::ALL.into_iter().find(|a| a.name() == name)
    }

    /// swscale's flags: the algorithm, accurate rounding, full chroma
    /// interpolation.
    pub fn flags(self) -> ffmpeg_next::software::scaling::Flags {
        use ffmpeg_next::software::scaling::Flags;
        let algo = match self {
            ScaleAlgo::Bicubic => Flags::BICUBIC,
            ScaleAlgo::Lanczos => Flags::LANCZOS,
            ScaleAlgo::Bilinear => Flags::BILINEAR,
            ScaleAlgo::Spline => Flags::SPLINE,
            ScaleAlgo::Neighbor => Flags::POINT,
        };
        algo | Flags::ACCURATE_RND | Flags::FULL_CHR_H_INT
    }
}

/// What we know of a pixel format from FFmpeg's descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatFacts {
    /// Number of components (3 for YUV/RGB, 1 for gray, +1 with alpha).
    pub components: u8,
    /// log2 of horizontal chroma subsampling.
    pub log2_chroma_w: u8,
    /// log2 of vertical chroma subsampling.
    pub log2_chroma_h: u8,
    /// Bits per sample of the first component.
    pub depth: u32,
    /// An RGB format.
    pub rgb: bool,
}

/// Reads the descriptor of `pixel`, `None` for an unknown format.
pub fn facts(pixel: Pixel) -> Option<FormatFacts> {
    let desc = pixel.descriptor()?;
    // SAFETY: the descriptor pointer comes from av_pix_fmt_desc_get and
    // points to a static table entry that lives for the whole program.
    let raw = unsafe { &*desc.as_ptr() };
    Some(FormatFacts {
        components: raw.nb_components,
        log2_chroma_w: raw.log2_chroma_w,
        log2_chroma_h: raw.log2_chroma_h,
        depth: raw.comp[0].depth as u32,
        rgb: raw.flags & ffi::AV_PIX_FMT_FLAG_RGB as u64 != 0,
    })
}

/// Formats whose planes are read as they are (after the decoder) and their
/// bit depth. yuvj* formats have the same planes as yuv*.
fn native(pixel: Pixel) -> Option<u32> {
    use Pixel::*;
    Some(match pixel {
        YUV420P | YUV422P | YUV444P | YUVJ420P | YUVJ422P | YUVJ444P | YUV410P | YUV411P
        | YUV440P | YUVJ440P | GRAY8 | GBRP => 8,
        YUV420P9LE | YUV422P9LE | YUV444P9LE | GBRP9LE | GRAY9LE => 9,
        YUV420P10LE | YUV422P10LE | YUV444P10LE | GBRP10LE | GRAY10LE => 10,
        YUV420P12LE | YUV422P12LE | YUV444P12LE | GBRP12LE | GRAY12LE => 12,
        YUV420P14LE | YUV422P14LE | YUV444P14LE | GBRP14LE | GRAY14LE => 14,
        YUV420P16LE | YUV422P16LE | YUV444P16LE | GBRP16LE | GRAY16LE => 16,
        _ => return Option::None,
    })
}

/// The planar format a source in `pixel` is measured in: itself when its
/// planes can be read natively, else its planar equivalent (nv12 →
/// yuv420p, rgb24 → gbrp, p010 → yuv420p10le, yuyv422 → yuv422p, …).
pub fn planar_equivalent(pixel: Pixel) -> Option<Pixel> {
    use Pixel::*;
    if native(pixel).is_some() {
        // Kept as it is (yuvj* too: same planes as yuv*, so no range
        // conversion happens between a yuvj and a yuv input).
        return Some(pixel);
    }
    let f = facts(pixel)?;
    let depth = match f.depth {
        0..=8 => 8,
        9..=10 => 10,
        11..=12 => 12,
        13..=14 => 14,
        _ => 16,
    };
    let pick = |d8, d10, d12, d14, d16| match depth {
        8 => d8,
        10 => d10,
        12 => d12,
        14 => d14,
        _ => d16,
    };
    Some(if f.rgb {
        pick(GBRP, GBRP10LE, GBRP12LE, GBRP14LE, GBRP16LE)
    } else if f.components <= 2 {
        pick(GRAY8, GRAY10LE, GRAY12LE, GRAY14LE, GRAY16LE)
    } else {
        match (f.log2_chroma_w, f.log2_chroma_h) {
            (1, 1) => pick(YUV420P, YUV420P10LE, YUV420P12LE, YUV420P14LE, YUV420P16LE),
            (1, 0) => pick(YUV422P, YUV422P10LE, YUV422P12LE, YUV422P14LE, YUV422P16LE),
            _ => pick(YUV444P, YUV444P10LE, YUV444P12LE, YUV444P14LE, YUV444P16LE),
        }
    })
}

/// Two formats have the same planes, sizes and sample coding (yuvj420p and
/// yuv420p do), so frames of one can be read as the other.
pub fn same_planes(a: Pixel, b: Pixel) -> bool {
    if a == b {
        return true;
    }
    use Pixel::*;
    let strip = |p| match p {
        YUVJ420P => YUV420P,
        YUVJ422P => YUV422P,
        YUVJ444P => YUV444P,
        YUVJ440P => YUV440P,
        p => p,
    };
    strip(a) == strip(b)
}

/// Bit depth of a planar target format.
pub fn depth_of(pixel: Pixel) -> u32 {
    native(pixel).unwrap_or(8)
}

/// Plane key suffixes of a planar target, in record order.
pub fn plane_names(pixel: Pixel) -> Vec<&'static str> {
    match facts(pixel) {
        Some(f) if f.rgb => vec!["r", "g", "b"],
        Some(f) if f.components <= 2 => vec!["y"],
        _ => vec!["y", "u", "v"],
    }
}

/// For each record plane, the index of the FFmpeg data plane holding it
/// (gbrp stores G, B, R; records say r, g, b).
pub fn plane_order(pixel: Pixel) -> Vec<usize> {
    match facts(pixel) {
        Some(f) if f.rgb => vec![2, 0, 1],
        Some(f) if f.components <= 2 => vec![0],
        _ => vec![0, 1, 2],
    }
}

/// `(width, height)` of each record plane of a `width`×`height` picture.
pub fn plane_dims(pixel: Pixel, width: u32, height: u32) -> Vec<(usize, usize)> {
    let f = facts(pixel);
    let (sw, sh) = f
        .map(|f| (f.log2_chroma_w, f.log2_chroma_h))
        .unwrap_or((0, 0));
    let (w, h) = (width as usize, height as usize);
    let cw = (w + (1 << sw) - 1) >> sw;
    let ch = (h + (1 << sh) - 1) >> sh;
    match f {
        Some(f) if f.rgb => vec![(w, h); 3],
        Some(f) if f.components <= 2 => vec![(w, h)],
        _ => vec![(w, h), (cw, ch), (cw, ch)],
    }
}

/// Name of a pixel format (`yuv420p`), or `unknown`.
pub fn name(pixel: Pixel) -> &'static str {
    pixel.descriptor().map(|d| d.name()).unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planar_equivalents() {
        ffmpeg_next::init().unwrap();
        assert_eq!(planar_equivalent(Pixel::NV12), Some(Pixel::YUV420P));
        assert_eq!(planar_equivalent(Pixel::YUYV422), Some(Pixel::YUV422P));
        assert_eq!(planar_equivalent(Pixel::RGB24), Some(Pixel::GBRP));
        assert_eq!(planar_equivalent(Pixel::P010LE), Some(Pixel::YUV420P10LE));
        assert_eq!(
            planar_equivalent(Pixel::YUV420P10BE),
            Some(Pixel::YUV420P10LE)
        );
        assert_eq!(
            planar_equivalent(Pixel::YUV422P10LE),
            Some(Pixel::YUV422P10LE)
        );
        assert_eq!(planar_equivalent(Pixel::YA8), Some(Pixel::GRAY8));
    }

    #[test]
    fn dims_round_chroma_up() {
        assert_eq!(
            plane_dims(Pixel::YUV420P, 5, 3),
            vec![(5, 3), (3, 2), (3, 2)]
        );
        assert_eq!(plane_dims(Pixel::YUV422P10LE, 7, 5)[1], (4, 5));
        assert_eq!(plane_dims(Pixel::GRAY8, 7, 5), vec![(7, 5)]);
        assert_eq!(plane_names(Pixel::GBRP), vec!["r", "g", "b"]);
        assert!(same_planes(Pixel::YUVJ420P, Pixel::YUV420P));
    }
}
