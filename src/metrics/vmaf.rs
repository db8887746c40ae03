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
use crate::metrics::vmaf_model;

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

/// libvmaf's feature extractors that vqm offers as metrics of their own:
/// the metric's name in `--metrics`, the extractor's name in libvmaf, the
/// record keys (libvmaf's names for what it computes), and whether lower
/// values are better.
pub struct Extractor {
    /// The metric's name in `--metrics`.
    pub metric: &'static str,
    /// The extractor's name in libvmaf.
    pub name: &'static str,
    /// The record keys, as libvmaf names its outputs.
    pub keys: &'static [&'static str],
    /// Lower values are better (CAMBI, a banding score).
    pub lower_is_better: bool,
    /// One line for the help texts.
    pub about: &'static str,
}

/// The extractors offered as metrics.
pub const EXTRACTORS: [Extractor; 5] = [
    Extractor {
        metric: "cambi",
        name: "cambi",
        keys: &["cambi"],
        lower_is_better: true,
        about: "CAMBI banding score of the distorted pictures (libvmaf; 0 = no banding)",
    },
    Extractor {
        metric: "psnr_hvs",
        name: "psnr_hvs",
        keys: &["psnr_hvs_y", "psnr_hvs_cb", "psnr_hvs_cr", "psnr_hvs"],
        lower_is_better: false,
        about: "PSNR-HVS per plane and weighted (libvmaf, Xiph's daala metric)",
    },
    Extractor {
        metric: "ciede2000",
        name: "ciede",
        keys: &["ciede2000"],
        lower_is_better: false,
        about: "CIEDE2000 colour difference as 45 - 20 log10(mean dE) (libvmaf)",
    },
    Extractor {
        metric: "float_ssim",
        name: "float_ssim",
        keys: &["float_ssim"],
        lower_is_better: false,
        about: "SSIM of the luma plane as libvmaf computes it (float_ssim)",
    },
    Extractor {
        metric: "float_ms_ssim",
        name: "float_ms_ssim",
        keys: &["float_ms_ssim"],
        lower_is_better: false,
        about: "MS-SSIM of the luma plane as libvmaf computes it (float_ms_ssim)",
    },
];

/// The extractor offered as metric `metric`.
pub fn extractor(metric: &str) -> Option<&'static Extractor> {
    EXTRACTORS.iter().find(|e| e.metric == metric)
}

/// Refuses pictures of `layout` that extractor `x` cannot measure, before
/// any is read (libvmaf would fail in the middle of a run, or worse).
pub fn check_extractor(x: &Extractor, layout: &Layout) -> Result<(), String> {
    let pix = pixel_format(layout).map_err(|e| e.replacen("vmaf", x.metric, 1))?;
    let (w, h) = layout.plane_dims.first().copied().unwrap_or((0, 0));
    let gray = pix == sys::VmafPixelFormat::VMAF_PIX_FMT_YUV400P;
    match x.name {
        "cambi" if w < 320 && h < 320 => Err(format!(
            "cambi: libvmaf measures banding on pictures at least 320 px wide or high, \
             not {w}x{h}"
        )),
        "float_ms_ssim" if w < 176 || h < 176 => Err(format!(
            "float_ms_ssim: libvmaf's five scales need pictures of at least 176x176, \
             not {w}x{h}"
        )),
        "psnr_hvs" | "ciede" if gray => Err(format!(
            "{}: libvmaf needs the chroma planes, and these pictures are gray",
            x.metric
        )),
        // libvmaf 2.3.1's ciede extractor takes 4:4:4 pictures without
        // copying them and frees the last one a second time when it
        // closes (the process aborts, in FFmpeg's filter too)
        "ciede" if pix == sys::VmafPixelFormat::VMAF_PIX_FMT_YUV444P => Err(
            "ciede2000: libvmaf 2.3.1's ciede extractor corrupts memory on 4:4:4 pictures \
             (it frees the last one twice); convert to 4:2:2 or 4:2:0 to measure it"
                .to_string(),
        ),
        _ => Ok(()),
    }
}

/// The record keys of a bootstrap model's confidence figures, after
/// `vmaf` itself: libvmaf's names for a model collection named `vmaf`.
pub const BOOTSTRAP_KEYS: [&str; 4] = [
    "vmaf_bagging",
    "vmaf_stddev",
    "vmaf_ci_p95_lo",
    "vmaf_ci_p95_hi",
];

/// Whether `options.model` is a bootstrap model (a collection of models,
/// such as `vmaf_b_v0.6.3`), by loading it; an error when it cannot be
/// loaded at all.
pub fn is_bootstrap(options: &VmafOptions) -> Result<bool, String> {
    Models::load(options).map(|m| !m.collection.is_null())
}

/// A model, or a bootstrap collection with its first model.
struct Models {
    model: *mut sys::VmafModel,
    collection: *mut sys::VmafModelCollection,
    /// A model file's features (none listed for a built-in model).
    features: Vec<String>,
}

/// Silences libvmaf's log (a process-wide level that `vmaf_init` sets):
/// its warnings would reach stderr beside vqm's own message when a model
/// cannot be loaded before any context exists.
fn quiet_log() {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let cfg = sys::VmafConfiguration {
            log_level: sys::VmafLogLevel::VMAF_LOG_LEVEL_NONE,
            n_threads: 0,
            n_subsample: 1,
            cpumask: 0,
        };
        let mut ctx = std::ptr::null_mut();
        // SAFETY: a valid out-pointer; the context, if made, is closed at
        // once: only the log level it sets is kept.
        unsafe {
            if sys::vmaf_init(&mut ctx, cfg) >= 0 && !ctx.is_null() {
                sys::vmaf_close(ctx);
            }
        }
    });
}

impl Models {
    /// Loads `options.model`: a built-in model as libvmaf's CLI does (a
    /// single model first, then a collection of models); a model file
    /// once [`vmaf_model`] has checked it (libvmaf crashes on some that it
    /// accepts), as what it holds, from the text checked.
    fn load(options: &VmafOptions) -> Result<Models, String> {
        quiet_log();
        let model = options.model.as_str();
        let name = CString::new("vmaf").map_err(|e| e.to_string())?;
        let mut mcfg = sys::VmafModelConfig {
            name: name.as_ptr(),
            flags: model_flags(options),
        };
        let file = if vmaf_model::is_path(model) {
            let checked = vmaf_model::read(model)
                .map_err(|e| format!("vmaf: cannot load the model file '{model}': {e}"))?;
            Some(checked)
        } else {
            None
        };
        let staged = file.as_ref().and_then(|f| vmaf_model::stage(&f.text));
        let arg = CString::new(staged.as_ref().map_or(model, |s| s.path()))
            .map_err(|_| format!("vmaf: bad model name '{model}'"))?;
        let is_path = file.is_some();
        let (single, collection) = match &file {
            Some(f) => (f.models == 1, f.models > 1),
            None => (true, true),
        };
        let mut this = Models {
            model: std::ptr::null_mut(),
            collection: std::ptr::null_mut(),
            features: file.map(|f| f.features).unwrap_or_default(),
        };
        let mut rc = -libc::EINVAL;
        if single {
            // SAFETY: valid out-pointers, config and NUL-terminated
            // strings that outlive the calls; what they set is freed in
            // `Drop`.
            rc = unsafe {
                if is_path {
                    sys::vmaf_model_load_from_path(&mut this.model, &mut mcfg, arg.as_ptr())
                } else {
                    sys::vmaf_model_load(&mut this.model, &mut mcfg, arg.as_ptr())
                }
            };
            if rc >= 0 && !this.model.is_null() {
                return Ok(this);
            }
            this.model = std::ptr::null_mut();
        }
        if collection {
            // SAFETY: as above.
            rc = unsafe {
                if is_path {
                    sys::vmaf_model_collection_load_from_path(
                        &mut this.model,
                        &mut this.collection,
                        &mut mcfg,
                        arg.as_ptr(),
                    )
                } else {
                    sys::vmaf_model_collection_load(
                        &mut this.model,
                        &mut this.collection,
                        &mut mcfg,
                        arg.as_ptr(),
                    )
                }
            };
            if rc >= 0 && !this.model.is_null() && !this.collection.is_null() {
                return Ok(this);
            }
        }
        Err(if is_path {
            format!(
                "vmaf: libvmaf {} refused the model file '{model}' ({}), though its fields \
                 passed vqm's checks",
                version(),
                std::io::Error::from_raw_os_error(if rc < 0 { -rc } else { libc::EINVAL })
            )
        } else {
            format!("vmaf: no built-in model '{model}'")
        })
    }
}

impl Drop for Models {
    fn drop(&mut self) {
        // SAFETY: each pointer is null or set by a successful load, and
        // freed once here (the collection does not own the first model).
        unsafe {
            if !self.collection.is_null() {
                sys::vmaf_model_collection_destroy(self.collection);
            }
            if !self.model.is_null() {
                sys::vmaf_model_destroy(self.model);
            }
        }
    }
}

/// A libvmaf context with its model (or only feature extractors), fed
/// pairs in order.
pub struct Vmaf {
    ctx: *mut sys::VmafContext,
    /// Declared after `ctx` so that it is dropped after the context is
    /// closed (the context may still run the models' extractors).
    models: Option<Models>,
    pix: sys::VmafPixelFormat,
    bpc: u32,
    width: u32,
    height: u32,
    /// Pictures read so far (the next index).
    read: u32,
    flushed: bool,
}

// SAFETY: the context and models are owned by this value alone and used by
// whichever one thread holds it; libvmaf's own worker threads synchronise
// with the context internally.
unsafe impl Send for Vmaf {}

impl Vmaf {
    /// A context without a model for pictures of `layout`, with `threads`
    /// of libvmaf's own (0: in the calling thread).
    fn context(layout: &Layout, threads: u32) -> Result<Vmaf, String> {
        let pix = pixel_format(layout)?;
        let (w, h) = layout.plane_dims.first().copied().unwrap_or((0, 0));
        let cfg = sys::VmafConfiguration {
            log_level: sys::VmafLogLevel::VMAF_LOG_LEVEL_NONE,
            n_threads: threads,
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
        Ok(Vmaf {
            ctx,
            models: None,
            pix,
            bpc: layout.bit_depth,
            width: w as u32,
            height: h as u32,
            read: 0,
            flushed: false,
        })
    }

    /// A context scoring pictures of `layout` with the built-in model
    /// `options.model`, or the model JSON file at that path (a single
    /// model or a bootstrap collection), and its options, with its
    /// `threads` of libvmaf's own (0: in the calling thread).
    pub fn new(layout: &Layout, options: &VmafOptions) -> Result<Vmaf, String> {
        let mut this = Vmaf::context(layout, options.threads)?;
        let models = Models::load(options)?;
        // SAFETY: the context and the model or collection are live;
        // libvmaf registers their feature extractors in the context.
        let rc = unsafe {
            if models.collection.is_null() {
                sys::vmaf_use_features_from_model(this.ctx, models.model)
            } else {
                sys::vmaf_use_features_from_model_collection(this.ctx, models.collection)
            }
        };
        let features = (rc < 0).then(|| models.features.clone());
        this.models = Some(models);
        match features {
            Some(f) if rc == -libc::EINVAL && !f.is_empty() => {
                Err(vmaf_model::features_refused(&f, &version()))
            }
            Some(_) => Err(failed("vmaf_use_features_from_model", rc)),
            None => Ok(this),
        }
    }

    /// A context running libvmaf's extractor `x` alone on pictures of
    /// `layout`, with `threads` of libvmaf's own.
    pub fn extractor(layout: &Layout, x: &Extractor, threads: u32) -> Result<Vmaf, String> {
        check_extractor(x, layout)?;
        let this = Vmaf::context(layout, threads)?;
        let name = CString::new(x.name).map_err(|e| e.to_string())?;
        // SAFETY: live context, NUL-terminated name; no options (null).
        let rc = unsafe { sys::vmaf_use_feature(this.ctx, name.as_ptr(), std::ptr::null_mut()) };
        if rc < 0 {
            return Err(failed(&format!("vmaf_use_feature({})", x.name), rc));
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
    /// of its features (or the context has no model).
    pub fn score(&self, index: u32) -> Option<f64> {
        let model = self.models.as_ref()?.model;
        if index >= self.read {
            return None;
        }
        let mut s = 0.0;
        // SAFETY: live context and model, valid out-pointer.
        let rc = unsafe { sys::vmaf_score_at_index(self.ctx, model, &mut s, index) };
        (rc >= 0).then_some(s)
    }

    /// A bootstrap model's figures for pair `index`, in the order of
    /// [`BOOTSTRAP_KEYS`] (bagging score, standard deviation, 95%
    /// interval), or `None` while libvmaf lacks a feature of the pair or
    /// the model is a single one.
    pub fn bootstrap(&self, index: u32) -> Option<[f64; 4]> {
        let collection = self.models.as_ref()?.collection;
        if collection.is_null() || index >= self.read {
            return None;
        }
        // SAFETY: an all-zero score is a valid out-value.
        let mut s: sys::VmafModelCollectionScore = unsafe { std::mem::zeroed() };
        // SAFETY: live context and collection, valid out-pointer.
        let rc = unsafe {
            sys::vmaf_score_at_index_model_collection(self.ctx, collection, &mut s, index)
        };
        let b = &s.bootstrap;
        (rc >= 0).then_some([b.bagging_score, b.stddev, b.ci.p95.lo, b.ci.p95.hi])
    }
}

impl Drop for Vmaf {
    fn drop(&mut self) {
        // SAFETY: the context was created in `context` and is closed
        // once, before the models (a field dropped after this) are freed.
        unsafe {
            if !self.ctx.is_null() {
                sys::vmaf_close(self.ctx);
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
