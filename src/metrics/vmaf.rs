//! A safe wrapper of libvmaf (Netflix's reference implementation of VMAF,
//! built from source by `libvmaf-sys` and linked statically): a context
//! with one model, fed pairs of pictures in order, giving each pair's score
//! once libvmaf has every feature of it (the motion feature of a picture
//! needs the next one).
//!
//! Every call into libvmaf is in this file; each `unsafe` block says what
//! it relies on. libvmaf's errors (negative errno codes) become messages
//! naming the call.

use std::ffi::{CStr, CString};

use libvmaf_sys as sys;

use crate::frame::{Frame, Samples};
use crate::metrics::context::{Layout, VmafOptions};

/// The model a run uses when none is named.
pub const DEFAULT_MODEL: &str = crate::metrics::context::DEFAULT_VMAF_MODEL;

/// libvmaf's version (`2.3.1`).
pub fn version() -> String {
    // SAFETY: vmaf_version returns a pointer to a static NUL-terminated
    // string.
    unsafe { CStr::from_ptr(sys::vmaf_version()) }
        .to_string_lossy()
        .into_owned()
}

fn failed(call: &str, code: i32) -> String {
    let cause = std::io::Error::from_raw_os_error(-code);
    format!("libvmaf: {call} failed: {cause}")
}

/// libvmaf's pixel format for pictures of `layout`, or why it has none.
pub fn pixel_format(layout: &Layout) -> Result<sys::VmafPixelFormat, String> {
    use sys::VmafPixelFormat as F;
    let dims = &layout.plane_dims;
    match (layout.plane_names.as_slice(), dims.as_slice()) {
        (["y"], _) => Ok(F::VMAF_PIX_FMT_YUV400P),
        (["y", "u", "v"], [(w, h), (cw, ch), _]) => {
            let (hw, hh) = (w.div_ceil(2), h.div_ceil(2));
            match (*cw, *ch) {
                (a, b) if a == *w && b == *h => Ok(F::VMAF_PIX_FMT_YUV444P),
                (a, b) if a == hw && b == *h => Ok(F::VMAF_PIX_FMT_YUV422P),
                (a, b) if a == hw && b == hh => Ok(F::VMAF_PIX_FMT_YUV420P),
                _ => Err(format!(
                    "vmaf: libvmaf takes 4:2:0, 4:2:2 or 4:4:4 YUV, not chroma planes of \
                     {cw}x{ch} for {w}x{h} pictures"
                )),
            }
        }
        _ => Err("vmaf: libvmaf measures YUV or gray pictures, not RGB".to_string()),
    }
}

fn model_flags(options: &VmafOptions) -> u64 {
    use sys::VmafModelFlags as M;
    let mut flags = M::VMAF_MODEL_FLAGS_DEFAULT as u64;
    if options.enable_transform {
        flags |= M::VMAF_MODEL_FLAG_ENABLE_TRANSFORM as u64;
    }
    if options.disable_clip {
        flags |= M::VMAF_MODEL_FLAG_DISABLE_CLIP as u64;
    }
    flags
}

/// The elementary features of the VMAF models (`--vmaf-features`), as
/// libvmaf names them; the `neg` model computes the ADM and VIF ones with
/// an enhancement gain limit, under these names with `_egl_1` appended.
pub const FEATURES: [&str; 11] = [
    "integer_adm2",
    "integer_adm_scale0",
    "integer_adm_scale1",
    "integer_adm_scale2",
    "integer_adm_scale3",
    "integer_motion2",
    "integer_motion",
    "integer_vif_scale0",
    "integer_vif_scale1",
    "integer_vif_scale2",
    "integer_vif_scale3",
];

/// The record keys of the elementary features for `model`: libvmaf's
/// names, with the `neg` model's suffix on the features it limits.
pub fn feature_keys(model: &str) -> Vec<String> {
    let neg = model.ends_with("neg") || model.ends_with("neg.json");
    FEATURES
        .iter()
        .map(|f| {
            if neg && !f.contains("motion") {
                format!("{f}_egl_1")
            } else {
                f.to_string()
            }
        })
        .collect()
}

/// The name libvmaf files feature `key` (a record key of
/// [`feature_keys`]) under in its collector: its output aliases some of
/// them (`VMAF_integer_feature_adm2_score` is printed `integer_adm2`);
/// the others, and the `neg` model's suffixed ones, are stored as printed.
pub fn collector_name(key: &str) -> String {
    match key.strip_prefix("integer_") {
        Some(x) if matches!(x, "adm2" | "motion" | "motion2") || x.starts_with("vif_scale") => {
            if x.ends_with("_egl_1") {
                key.to_string()
            } else {
                format!("VMAF_integer_feature_{x}_score")
            }
        }
        _ => key.to_string(),
    }
}

/// A libvmaf context with its model, fed pairs in order.
pub struct Vmaf {
    ctx: *mut sys::VmafContext,
    model: *mut sys::VmafModel,
    pix: sys::VmafPixelFormat,
    bpc: u32,
    width: u32,
    height: u32,
    /// Pictures read so far (the next index).
    read: u32,
    flushed: bool,
}

// SAFETY: the context and model are owned by this value alone and used by
// whichever one thread holds it; libvmaf's own worker threads synchronise
// with the context internally.
unsafe impl Send for Vmaf {}

impl Vmaf {
    /// A context scoring pictures of `layout` with the built-in model
    /// `options.model`, or the model JSON file at that path, and its
    /// options, with its `threads` of libvmaf's own (0: in the calling
    /// thread).
    pub fn new(layout: &Layout, options: &VmafOptions) -> Result<Vmaf, String> {
        let model = options.model.as_str();
        let pix = pixel_format(layout)?;
        let (w, h) = layout.plane_dims.first().copied().unwrap_or((0, 0));
        let cfg = sys::VmafConfiguration {
            log_level: sys::VmafLogLevel::VMAF_LOG_LEVEL_NONE,
            n_threads: options.threads,
            n_subsample: 1,
            cpumask: 0,
        };
        let mut ctx = std::ptr::null_mut();
        // SAFETY: `ctx` is a valid out-pointer; on success libvmaf sets it
        // to a context that `Drop` closes.
        let rc = unsafe { sys::vmaf_init(&mut ctx, cfg) };
        if rc < 0 || ctx.is_null() {
            return Err(failed("vmaf_init", rc));
        }
        let mut this = Vmaf {
            ctx,
            model: std::ptr::null_mut(),
            pix,
            bpc: layout.bit_depth,
            width: w as u32,
            height: h as u32,
            read: 0,
            flushed: false,
        };
        let name = CString::new("vmaf").map_err(|e| e.to_string())?;
        let mut mcfg = sys::VmafModelConfig {
            name: name.as_ptr(),
            flags: model_flags(options),
        };
        let arg = CString::new(model).map_err(|_| format!("vmaf: bad model name '{model}'"))?;
        let is_path = model.contains('/') || model.ends_with(".json");
        // SAFETY: valid out-pointer, config and NUL-terminated strings that
        // outlive the call; on success the model is destroyed in `Drop`.
        let rc = unsafe {
            if is_path {
                sys::vmaf_model_load_from_path(&mut this.model, &mut mcfg, arg.as_ptr())
            } else {
                sys::vmaf_model_load(&mut this.model, &mut mcfg, arg.as_ptr())
            }
        };
        if rc < 0 || this.model.is_null() {
            this.model = std::ptr::null_mut();
            return Err(if is_path {
                format!("vmaf: cannot load the model file '{model}'")
            } else {
                format!("vmaf: no built-in model '{model}'")
            });
        }
        // SAFETY: both pointers are live; libvmaf registers the model's
        // feature extractors in the context.
        let rc = unsafe { sys::vmaf_use_features_from_model(this.ctx, this.model) };
        if rc < 0 {
            return Err(failed("vmaf_use_features_from_model", rc));
        }
        Ok(this)
    }

    /// A libvmaf picture holding a copy of `frame`.
    fn picture(&self, frame: &Frame) -> Result<sys::VmafPicture, String> {
        // SAFETY: an all-zero VmafPicture (null pointers, zero sizes) is
        // what vmaf_picture_alloc expects to fill.
        let mut pic: sys::VmafPicture = unsafe { std::mem::zeroed() };
        // SAFETY: `pic` is valid; libvmaf allocates its planes.
        let rc = unsafe {
            sys::vmaf_picture_alloc(&mut pic, self.pix, self.bpc, self.width, self.height)
        };
        if rc < 0 {
            return Err(failed("vmaf_picture_alloc", rc));
        }
        let planes = if self.pix == sys::VmafPixelFormat::VMAF_PIX_FMT_YUV400P {
            1
        } else {
            3
        };
        for (p, plane) in frame.planes.iter().take(planes).enumerate() {
            let (w, h) = (pic.w[p] as usize, pic.h[p] as usize);
            if (plane.width, plane.height) != (w, h) {
                // SAFETY: the picture was allocated above and is ours.
                unsafe { sys::vmaf_picture_unref(&mut pic) };
                return Err(format!(
                    "vmaf: plane {p} is {}x{}, libvmaf expects {w}x{h}",
                    plane.width, plane.height
                ));
            }
            let stride = pic.stride[p] as usize;
            let base = pic.data[p] as *mut u8;
            for y in 0..h {
                // SAFETY: libvmaf allocated `h` rows of `stride` bytes, each
                // holding `w` samples of the picture's sample size, which
                // is what is copied (u8 at 8 bits, u16 above).
                unsafe {
                    let row = base.add(y * stride);
                    match &plane.samples {
                        Samples::U8(s) => {
                            std::ptr::copy_nonoverlapping(s[y * w..].as_ptr(), row, w)
                        }
                        Samples::U16(s) => {
                            std::ptr::copy_nonoverlapping(s[y * w..].as_ptr(), row as *mut u16, w)
                        }
                    }
                }
            }
        }
        Ok(pic)
    }

    /// Reads the next pair.
    pub fn read(&mut self, reference: &Frame, distorted: &Frame) -> Result<(), String> {
        let mut r = self.picture(reference)?;
        let mut d = match self.picture(distorted) {
            Ok(d) => d,
            Err(e) => {
                // SAFETY: `r` was allocated above and not handed over.
                unsafe { sys::vmaf_picture_unref(&mut r) };
                return Err(e);
            }
        };
        // SAFETY: the context is live and both pictures are valid and
        // ours; libvmaf takes them over (it unreferences them when done).
        let rc = unsafe { sys::vmaf_read_pictures(self.ctx, &mut r, &mut d, self.read) };
        if rc < 0 {
            return Err(failed("vmaf_read_pictures", rc));
        }
        self.read += 1;
        Ok(())
    }

    /// No more pairs: libvmaf completes the features of the last pictures.
    pub fn flush(&mut self) -> Result<(), String> {
        if self.flushed {
            return Ok(());
        }
        self.flushed = true;
        // SAFETY: null pictures are libvmaf's way to say "no more".
        let rc = unsafe {
            sys::vmaf_read_pictures(self.ctx, std::ptr::null_mut(), std::ptr::null_mut(), 0)
        };
        if rc < 0 {
            return Err(failed("vmaf_read_pictures (flush)", rc));
        }
        Ok(())
    }

    /// The elementary feature `name` (libvmaf's name) of pair `index`, or
    /// `None` when libvmaf has no such feature there.
    pub fn feature(&self, name: &CStr, index: u32) -> Option<f64> {
        if index >= self.read {
            return None;
        }
        let mut s = 0.0;
        // SAFETY: live context, NUL-terminated name, valid out-pointer.
        let rc =
            unsafe { sys::vmaf_feature_score_at_index(self.ctx, name.as_ptr(), &mut s, index) };
        (rc >= 0).then_some(s)
    }

    /// The score of pair `index`, or `None` while libvmaf still lacks one
    /// of its features.
    pub fn score(&self, index: u32) -> Option<f64> {
        if index >= self.read {
            return None;
        }
        let mut s = 0.0;
        // SAFETY: live context and model, valid out-pointer.
        let rc = unsafe { sys::vmaf_score_at_index(self.ctx, self.model, &mut s, index) };
        (rc >= 0).then_some(s)
    }
}

impl Drop for Vmaf {
    fn drop(&mut self) {
        // SAFETY: the context and model were created in `new` and are
        // freed once, the context first (it may still run the model's
        // extractors).
        unsafe {
            if !self.ctx.is_null() {
                sys::vmaf_close(self.ctx);
            }
            if !self.model.is_null() {
                sys::vmaf_model_destroy(self.model);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_keys_follow_libvmafs_printed_names_and_its_collector() {
        let plain = feature_keys("vmaf_v0.6.1");
        assert_eq!(plain.len(), 11);
        assert_eq!(collector_name(&plain[0]), "VMAF_integer_feature_adm2_score");
        assert_eq!(collector_name("integer_adm_scale2"), "integer_adm_scale2");
        assert_eq!(
            collector_name("integer_motion2"),
            "VMAF_integer_feature_motion2_score"
        );
        assert_eq!(
            collector_name("integer_vif_scale3"),
            "VMAF_integer_feature_vif_scale3_score"
        );
        let neg = feature_keys("vmaf_v0.6.1neg");
        assert!(neg.contains(&"integer_vif_scale0_egl_1".to_string()));
        assert!(neg.contains(&"integer_motion".to_string()));
        assert_eq!(collector_name("integer_adm2_egl_1"), "integer_adm2_egl_1");
    }
}
