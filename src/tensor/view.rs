//! Shape and layout ops: reshape (free), permute/transpose, narrow, concat, index_select, and
//! dtype/device conversion. Each records an Op so gradients flow back through it.

use super::{Shape, Tensor};
use crate::autograd::Op;
use crate::backend::{self, Storage};
use crate::tensor::{DType, Device};
use crate::{Error, Result};

impl Tensor {
    /// Same elements, new shape (free: the buffer is shared). Element counts must match.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.elem_count() != self.elem_count() {
            return Err(Error::shape("reshape", self.shape(), &shape, "element counts differ"));
        }
        // The new tensor shares the buffer (no copy).
        Ok(Tensor::from_op(self.storage_arc(), shape, Op::Reshape(self.clone())))
    }

    /// Reorder dimensions: output dim i is input dim `perm[i]` (a copy).
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let r = self.rank();
        let mut seen = vec![false; r];
        if perm.len() != r || perm.iter().any(|&p| p >= r || std::mem::replace(&mut seen[p], true)) {
            return Err(Error::bad_shape("permute", self.shape(), format!("{perm:?} is not a permutation of 0..{r}")));
        }
        let out = Shape(perm.iter().map(|&p| self.dims()[p]).collect());
        let s = backend::permute(&self.storage(), self.shape(), perm)?;
        Ok(Tensor::from_op(s, out, Op::Permute(self.clone(), perm.to_vec())))
    }

    /// Swap two dimensions (negative axes count from the end).
    pub fn transpose(&self, a: isize, b: isize) -> Result<Tensor> {
        let (a, b) = (self.shape().axis("transpose", a)?, self.shape().axis("transpose", b)?);
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Elements [start, start + len) along `axis`.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Tensor> {
        let ax = self.shape().axis("narrow", axis)?;
        let (outer, dim, inner) = self.shape().split_at_axis(ax);
        if start + len > dim {
            return Err(Error::range("narrow", format!("[{start}, {}) along axis {ax} of shape {}", start + len, self.shape())));
        }
        let mut out = self.dims().to_vec();
        out[ax] = len;
        let s = backend::narrow(&self.storage(), outer, dim, inner, start, len)?;
        Ok(Tensor::from_op(s, Shape(out), Op::Narrow { x: self.clone(), axis: ax, start }))
    }

    /// Join tensors along `axis`; all other dimensions must agree.
    pub fn concat(parts: &[Tensor], axis: isize) -> Result<Tensor> {
        let first = parts.first().ok_or_else(|| Error::Msg("concat: no tensors given".into()))?;
        let ax = first.shape().axis("concat", axis)?;
        for p in parts {
            let same = p.rank() == first.rank() && (0..p.rank()).all(|d| d == ax || p.dims()[d] == first.dims()[d]);
            if !same {
                return Err(Error::shape("concat", first.shape(), p.shape(), format!("dims other than axis {ax} must match")));
            }
        }
        let dims: Vec<usize> = parts.iter().map(|p| p.dims()[ax]).collect();
        let (outer, _, inner) = first.shape().split_at_axis(ax);
        let guards: Vec<_> = parts.iter().map(|p| p.storage()).collect();
        let refs: Vec<&Storage> = guards.iter().map(|g| &**g).collect();
        let s = backend::concat(&refs, outer, &dims, inner)?;
        drop(guards);
        let mut out = first.dims().to_vec();
        out[ax] = dims.iter().sum();
        Ok(Tensor::from_op(s, Shape(out), Op::Concat { parts: parts.to_vec(), axis: ax }))
    }

    /// Gather entries `ids` (U32, 1-D) along `axis`.
    pub fn index_select(&self, ids: &Tensor, axis: isize) -> Result<Tensor> {
        let ax = self.shape().axis("index_select", axis)?;
        if ids.dtype() != DType::U32 || ids.rank() != 1 {
            return Err(Error::bad_shape("index_select", ids.shape(), format!("ids must be 1-D U32, got {:?}", ids.dtype())));
        }
        let (outer, dim, inner) = self.shape().split_at_axis(ax);
        check_ids("index_select", ids, dim)?;
        let s = backend::index_select(&self.storage(), &ids.storage(), outer, dim, inner)?;
        let mut out = self.dims().to_vec();
        out[ax] = ids.elem_count();
        Ok(Tensor::from_op(s, Shape(out), Op::IndexSelect { x: self.clone(), ids: ids.clone(), axis: ax }))
    }

    /// Convert the element type (F32 <-> F64 <-> BF16; U32 <-> floats without gradient).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let s = self.storage().cast(dtype)?;
        Ok(Tensor::from_op(s, self.shape().clone(), Op::Cast(self.clone())))
    }

    /// Copy to another device; gradients flow back to the source device.
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        if device == self.device() {
            return Ok(self.clone());
        }
        let s = self.storage().to_device(device)?;
        Ok(Tensor::from_op(s, self.shape().clone(), Op::ToDevice(self.clone())))
    }
}

/// Every id must be < `bound` (token ids vs vocab, targets vs classes, rows vs table size).
pub(crate) fn check_ids(op: &'static str, ids: &Tensor, bound: usize) -> Result<()> {
    if let Some((i, &bad)) = ids.to_vec_u32()?.iter().enumerate().find(|(_, &v)| v as usize >= bound) {
        return Err(Error::range(op, format!("id {bad} at position {i} is >= {bound}")));
    }
    Ok(())
}
