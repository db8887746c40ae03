//! Statistics over per-frame values: the pooled summary and rolling windows.

pub mod moments;
pub mod pool;
pub mod rolling;

pub use pool::{Pooled, PooledKey};
pub use rolling::{Rolling, WindowSpec};
