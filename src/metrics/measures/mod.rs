//! The metrics, one file per family: each implements
//! [`crate::metrics::Metric`] over the kernels and the pair context.

pub mod histogram;
pub mod losses;
pub mod ms_ssim;
pub mod psnr;
pub mod ssim;
pub mod vmaf;
