//! `Tensor`: a cheap, clonable handle (an `Arc`) to an immutable-shape, contiguous buffer on one
//! device, plus the autograd record of how it was made. Creation and accessors live here; views
//! in view.rs, arithmetic in arith.rs, the fused ops in src/ops/.

mod arith;
mod shape;
pub(crate) mod view;

pub use shape::{DType, Device, Shape};

use crate::autograd::{self, Op};
use crate::backend::{cpu::CpuStorage, Storage};
use crate::{rng, Error, Result};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

#[derive(Clone)]
pub struct Tensor(Arc<Inner>);

pub(crate) struct Inner {
    id: usize,
    shape: Shape,
    dtype: DType,
    /// Replaced wholesale by `assign` (optimizer steps) or `move_to`; never resized or written
    /// through. Shared (the Arc) by a reshape and its input, so reshape copies nothing; a later
    /// `assign` swaps in another Arc and leaves earlier reshapes as they were. The tensor's
    /// device is its storage's.
    storage: RwLock<Arc<Storage>>,
    /// How this tensor was computed; None for leaves and for results made with grad off.
    op: Option<Op>,
    requires_grad: AtomicBool,
}

/// A read lock on a tensor's buffer; derefs to the `Storage` (`.clone()` on it copies the data).
pub struct StorageRef<'a>(RwLockReadGuard<'a, Arc<Storage>>);

impl std::ops::Deref for StorageRef<'_> {
    type Target = Storage;
    fn deref(&self) -> &Storage {
        &self.0
    }
}

fn next_id() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Tensor {
    // ---- construction ---------------------------------------------------------------------

    /// Wrap a storage as a leaf. The storage must hold exactly `shape.elem_count()` elements.
    pub fn from_storage(storage: Storage, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        let len = match &storage {
            Storage::Cpu(c) => c.len(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(c) => c.len,
        };
        if len != shape.elem_count() {
            return Err(Error::bad_shape("from_storage", &shape, format!("{len} elements given")));
        }
        Ok(Self::make(storage, shape, None))
    }

    /// The result of an op: records `op` when grad mode is on and any input needs a gradient.
    pub(crate) fn from_op(storage: impl Into<Arc<Storage>>, shape: Shape, op: Op) -> Tensor {
        let op = (autograd::is_grad_enabled() && op.inputs().iter().any(|t| t.tracked())).then_some(op);
        Self::make(storage, shape, op)
    }

    fn make(storage: impl Into<Arc<Storage>>, shape: Shape, op: Option<Op>) -> Tensor {
        let storage: Arc<Storage> = storage.into();
        Tensor(Arc::new(Inner {
            id: next_id(),
            dtype: storage.dtype(),
            shape,
            storage: RwLock::new(storage),
            op,
            requires_grad: AtomicBool::new(false),
        }))
    }

    pub fn from_vec(data: Vec<f32>, shape: impl Into<Shape>) -> Result<Tensor> {
        Self::from_storage(Storage::Cpu(CpuStorage::F32(data)), shape)
    }
    pub fn from_vec_f64(data: Vec<f64>, shape: impl Into<Shape>) -> Result<Tensor> {
        Self::from_storage(Storage::Cpu(CpuStorage::F64(data)), shape)
    }
    pub fn from_vec_u32(data: Vec<u32>, shape: impl Into<Shape>) -> Result<Tensor> {
        Self::from_storage(Storage::Cpu(CpuStorage::U32(data)), shape)
    }
    pub fn scalar(v: f32) -> Tensor {
        Self::make(Storage::Cpu(CpuStorage::F32(vec![v])), Shape(vec![]), None)
    }
    pub fn zeros(shape: impl Into<Shape>, dtype: DType, device: Device) -> Result<Tensor> {
        let shape = shape.into();
        Self::from_storage(Storage::Cpu(CpuStorage::zeros(dtype, shape.elem_count())), shape)?.to_device(device)
    }
    pub fn full(shape: impl Into<Shape>, value: f64, dtype: DType, device: Device) -> Result<Tensor> {
        let shape = shape.into();
        let s = CpuStorage::F64(vec![value; shape.elem_count()]).cast(dtype);
        Self::from_storage(Storage::Cpu(s), shape)?.to_device(device)
    }
    pub fn ones(shape: impl Into<Shape>, dtype: DType, device: Device) -> Result<Tensor> {
        Self::full(shape, 1.0, dtype, device)
    }
    /// Normal(0, std^2) f32 values from the counter-based RNG: a pure function of (seed, stream).
    pub fn randn(shape: impl Into<Shape>, std: f32, seed: u64, stream: u32) -> Result<Tensor> {
        let shape = shape.into();
        Self::from_vec(rng::normal_vec(seed, stream, shape.elem_count(), 0.0, std), shape)
    }
    /// Uniform [lo, hi) f32 values from the counter-based RNG.
    pub fn uniform(shape: impl Into<Shape>, lo: f32, hi: f32, seed: u64, stream: u32) -> Result<Tensor> {
        let shape = shape.into();
        Self::from_vec(rng::uniform_vec(seed, stream, shape.elem_count(), lo, hi), shape)
    }

    // ---- accessors ------------------------------------------------------------------------

    pub fn id(&self) -> usize {
        self.0.id
    }
    pub fn shape(&self) -> &Shape {
        &self.0.shape
    }
    pub fn dims(&self) -> &[usize] {
        &self.0.shape.0
    }
    pub fn rank(&self) -> usize {
        self.0.shape.rank()
    }
    pub fn elem_count(&self) -> usize {
        self.0.shape.elem_count()
    }
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }
    pub fn device(&self) -> Device {
        self.storage().device()
    }
    pub fn op(&self) -> Option<&Op> {
        self.0.op.as_ref()
    }
    /// Read access to the buffer. Hold the guard only for the duration of one backend call.
    pub fn storage(&self) -> StorageRef<'_> {
        StorageRef(self.0.storage.read().unwrap_or_else(|e| e.into_inner()))
    }
    /// The buffer itself, shared (reshape, detach and assign pass it on without a copy).
    pub(crate) fn storage_arc(&self) -> Arc<Storage> {
        self.storage().0.clone()
    }
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
    }
    /// Mark a leaf as a parameter that wants a gradient (or freeze it with `false`).
    pub fn set_requires_grad(&self, on: bool) -> &Self {
        self.0.requires_grad.store(on, Ordering::Relaxed);
        self
    }
    /// Builder form of `set_requires_grad(true)`.
    pub fn with_grad(self) -> Self {
        self.set_requires_grad(true);
        self
    }
    /// True when gradients flow through this tensor: a parameter, or computed from one.
    pub fn tracked(&self) -> bool {
        self.requires_grad() || self.0.op.is_some()
    }
    /// A new leaf sharing no history with `self` (it shares the buffer, which is never written
    /// through).
    pub fn detach(&self) -> Tensor {
        Self::make(self.storage_arc(), self.shape().clone(), None)
    }
    pub fn same_shape(&self, other: &Tensor) -> bool {
        self.shape() == other.shape()
    }

    /// Replace the buffer in place (optimizer updates). Shape, dtype and device must match.
    pub fn assign(&self, value: &Tensor) -> Result<()> {
        if value.shape() != self.shape() || value.dtype() != self.dtype() || value.device() != self.device() {
            return Err(Error::shape("assign", self.shape(), value.shape(), format!("{:?}/{} into {:?}/{}", value.dtype(), value.device(), self.dtype(), self.device())));
        }
        let new = value.storage_arc();
        *self.0.storage.write().unwrap_or_else(|e| e.into_inner()) = new;
        Ok(())
    }

    /// Move this tensor's buffer to `device` in place, keeping its identity (a model's
    /// parameters move this way, so optimizer state and names still refer to them).
    pub fn move_to(&self, device: Device) -> Result<()> {
        if self.device() == device {
            return Ok(());
        }
        let new = self.storage().to_device(device)?;
        *self.0.storage.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
        Ok(())
    }

    // ---- reading values back --------------------------------------------------------------

    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        Ok(self.storage().to_cpu()?.to_f64_vec())
    }
    pub fn to_vec_f32(&self) -> Result<Vec<f32>> {
        match self.storage().to_cpu()?.cast(DType::F32) {
            CpuStorage::F32(v) => Ok(v),
            _ => unreachable!("cast to F32 yields F32"),
        }
    }
    pub fn to_vec_u32(&self) -> Result<Vec<u32>> {
        match self.storage().to_cpu()? {
            CpuStorage::U32(v) => Ok(v),
            other => Err(Error::DTypeMismatch { op: "to_vec_u32", expected: DType::U32, got: other.dtype() }),
        }
    }
    /// The single value of a one-element tensor.
    pub fn to_scalar(&self) -> Result<f64> {
        if self.elem_count() != 1 {
            return Err(Error::bad_shape("to_scalar", self.shape(), "expected exactly one element"));
        }
        Ok(self.to_vec_f64()?[0])
    }

    /// Copy into an `ndarray` (f32), for analysis code.
    pub fn to_ndarray(&self) -> Result<ndarray::ArrayD<f32>> {
        ndarray::ArrayD::from_shape_vec(self.dims().to_vec(), self.to_vec_f32()?).map_err(|e| Error::Msg(format!("to_ndarray: {e}")))
    }
    /// Copy from an `ndarray` (any memory layout) into a new f32 leaf.
    pub fn from_ndarray(a: &ndarray::ArrayD<f32>) -> Result<Tensor> {
        Self::from_vec(a.iter().copied().collect(), a.shape().to_vec())
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor(#{}, {}, {:?}, {}", self.id(), self.shape(), self.dtype(), self.device())?;
        if let Some(op) = self.op() {
            write!(f, ", op={}", op.name())?;
        }
        write!(f, ")")
    }
}
