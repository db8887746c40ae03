//! Opening an FFmpeg demuxer: `avformat_open_input` and
//! `avformat_find_stream_info` through the C API, for what the safe
//! wrapper cannot give (an interrupt callback, demuxer options, a custom
//! I/O context).

use ffmpeg_next as ff;

/// `avformat_open_input` + `avformat_find_stream_info` with an interrupt
/// callback (so a stalled live read returns) and demuxer options.
pub(super) fn open_input(
    url: &str,
    format: Option<&str>,
    options: ff::Dictionary,
    interrupt: impl FnMut() -> bool + 'static,
    io: Option<&super::udp::Io>,
) -> Result<ff::format::context::Input, ff::Error> {
    use ff::ffi;
    let curl = std::ffi::CString::new(url).map_err(|_| ff::Error::InvalidData)?;
    let fmt = match format {
        Some(name) => {
            let cname = std::ffi::CString::new(name).map_err(|_| ff::Error::InvalidData)?;
            // SAFETY: av_find_input_format returns a pointer to a static
            // demuxer description, or null.
            let f = unsafe { ffi::av_find_input_format(cname.as_ptr()) };
            if f.is_null() {
                return Err(ff::Error::DemuxerNotFound);
            }
            f
        }
        None => std::ptr::null(),
    };
    // SAFETY: the context is allocated here and either handed to
    // `Input::wrap`, which owns and frees it, or freed by
    // avformat_open_input / avformat_close_input on failure. The interrupt
    // closure is leaked on purpose: FFmpeg may call it until the context
    // is closed (a few bytes per open).
    unsafe {
        let mut ps = ffi::avformat_alloc_context();
        if ps.is_null() {
            return Err(ff::Error::Other {
                errno: ff::util::error::ENOMEM,
            });
        }
        (*ps).interrupt_callback = ff::util::interrupt::new(Box::new(interrupt)).interrupt;
        if let Some(io) = io {
            // read through vqm's own receiver; the context stays the
            // caller's to free (after the input is closed)
            (*ps).pb = io.as_ptr();
            (*ps).flags |= ffi::AVFMT_FLAG_CUSTOM_IO as libc::c_int;
        }
        let mut opts = options.disown();
        let res = ffi::avformat_open_input(&mut ps, curl.as_ptr(), fmt as _, &mut opts);
        ff::Dictionary::own(opts);
        if res != 0 {
            return Err(ff::Error::from(res));
        }
        let r = ffi::avformat_find_stream_info(ps, std::ptr::null_mut());
        if r < 0 {
            ffi::avformat_close_input(&mut ps);
            return Err(ff::Error::from(r));
        }
        Ok(ff::format::context::Input::wrap(ps))
    }
}
