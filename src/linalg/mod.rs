//! Dense numerics for fits and probes, on plain f64 slices: the ONLY module (with the matmul in
//! backend/cpu) where faer types appear.
//!
//!   dense    least squares by QR, matrix product (faer)
//!   lbfgs    L-BFGS with a strong-Wolfe line search (unconstrained minimisation)
//!   lsq      bounded non-linear least squares (projected Levenberg-Marquardt)
//!   huber    the Huber loss and its derivative
//!   logreg   multinomial logistic regression with an L2 penalty, fitted by L-BFGS
//!   stats    Pearson and Spearman correlation, feature standardisation
//!   svd      thin SVD, symmetric eigen-decomposition (f32 and f64), minimum-norm least squares
//!
//! Shapes: N rows (samples), F features, K classes; matrices are row-major.

pub mod dense;
pub mod huber;
pub mod lbfgs;
pub mod logreg;
pub mod lsq;
pub mod stats;
pub mod svd;

pub use dense::{gemm, lstsq};
pub use huber::{huber, huber_grad, huber_sum};
pub use lbfgs::{minimize, LbfgsOptions, LbfgsStop, Minimum};
pub use logreg::{LogReg, LogRegOptions};
pub use lsq::{least_squares, LsqFit, LsqOptions, LsqStop};
pub use stats::{pearson, spearman, standardise, standardiser};
pub use svd::{eigh, eigh_f32, lstsq_min_norm, svd, svd_f32, Svd};
