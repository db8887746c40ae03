//! `--ref-filter` / `--dist-filter`: an FFmpeg filtergraph (libavfilter,
//! `crop=…`, `yadif`, …) between an input's decoder and vqm's conversion,
//! so deinterlacing or cropping needs no extra pipe. The graph is built
//! when the input opens, from the decoder's picture size, format, time
//! base and aspect; what it gives (size, format, time base) is what the
//! input delivers.

use ff::format::Pixel;
use ffmpeg_next as ff;

/// One input's filtergraph: a `buffer` source, the user's chain, a
/// `buffersink`.
pub(super) struct Filter {
    graph: ff::filter::Graph,
    /// The last picture taken from the sink.
    out: ff::frame::Video,
    /// The sink's time base, seconds per tick.
    time_base: f64,
    /// The pictures it gives: format, width, height.
    output: (Pixel, u32, u32),
}

// SAFETY: the graph and its frames are owned by this value and used by
// the one decoder thread that holds the session.
unsafe impl Send for Filter {}

impl Filter {
    /// The chain `spec` fed with the pictures of `decoder` (stamped in
    /// `time_base`), configured at once so that its output is known.
    pub(super) fn new(
        spec: &str,
        decoder: &ff::decoder::Video,
        time_base: ff::Rational,
    ) -> Result<Filter, String> {
        let bad = |e: ff::Error| {
            format!(
                "filter '{spec}': FFmpeg cannot build this filtergraph ({e}; its syntax is the -vf option's)"
            )
        };
        let mut graph = ff::filter::Graph::new();
        let aspect = decoder.aspect_ratio();
        let aspect = if aspect.numerator() > 0 && aspect.denominator() > 0 {
            aspect
        } else {
            ff::Rational::new(1, 1)
        };
        let args = format!(
            "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}",
            decoder.width(),
            decoder.height(),
            ff::ffi::AVPixelFormat::from(decoder.format()) as i32,
            time_base.numerator(),
            time_base.denominator().max(1),
            aspect.numerator(),
            aspect.denominator()
        );
        let (Some(buffer), Some(sink)) =
            (ff::filter::find("buffer"), ff::filter::find("buffersink"))
        else {
            return Err("this FFmpeg has no buffer/buffersink filters".to_string());
        };
        graph.add(&buffer, "in", &args).map_err(bad)?;
        graph.add(&sink, "out", "").map_err(bad)?;
        graph
            .output("in", 0)
            .and_then(|p| p.input("out", 0))
            .and_then(|p| p.parse(spec))
            .map_err(bad)?;
        graph.validate().map_err(bad)?;
        let Some(ctx) = graph.get("out") else {
            return Err(format!("filter '{spec}': no sink"));
        };
        // SAFETY: reading the configured sink's output properties; the
        // context lives as long as the graph.
        let (format, w, h, tb) = unsafe {
            let p = ctx.as_ptr();
            (
                ff::ffi::av_buffersink_get_format(p),
                ff::ffi::av_buffersink_get_w(p),
                ff::ffi::av_buffersink_get_h(p),
                ff::ffi::av_buffersink_get_time_base(p),
            )
        };
        if !(0..ff::ffi::AVPixelFormat::AV_PIX_FMT_NB as i32).contains(&format) {
            return Err(format!("filter '{spec}': it gives no video pictures"));
        }
        // SAFETY: `format` is within AVPixelFormat's range (checked above,
        // against the headers libavfilter was built with).
        let pixel =
            Pixel::from(unsafe { std::mem::transmute::<i32, ff::ffi::AVPixelFormat>(format) });
        if w <= 0 || h <= 0 || pixel == Pixel::None {
            return Err(format!("filter '{spec}': it gives no video pictures"));
        }
        let time_base = if tb.den > 0 {
            tb.num as f64 / tb.den as f64
        } else {
            0.0
        };
        Ok(Filter {
            graph,
            out: ff::frame::Video::empty(),
            time_base,
            output: (pixel, w as u32, h as u32),
        })
    }

    /// The pictures it gives: format, width, height.
    pub(super) fn output(&self) -> (Pixel, u32, u32) {
        self.output
    }

    /// Seconds per tick of the pictures it gives.
    pub(super) fn time_base(&self) -> f64 {
        self.time_base
    }

    /// Feeds a decoded picture, or the end (`None`).
    pub(super) fn push(&mut self, picture: Option<&ff::frame::Video>) -> Result<(), String> {
        let Some(mut src) = self.graph.get("in") else {
            return Err("filter: no source".to_string());
        };
        let mut source = src.source();
        match picture {
            Some(p) => source.add(p),
            None => source.flush(),
        }
        .map_err(|e| format!("filter: {e}"))
    }

    /// The next filtered picture, if the graph has one ready.
    pub(super) fn pull(&mut self) -> Result<Option<&ff::frame::Video>, String> {
        let Some(mut ctx) = self.graph.get("out") else {
            return Err("filter: no sink".to_string());
        };
        match ctx.sink().frame(&mut self.out) {
            Ok(()) => Ok(Some(&self.out)),
            Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => Ok(None),
            Err(ff::Error::Eof) => Ok(None),
            Err(e) => Err(format!("filter: {e}")),
        }
    }
}
