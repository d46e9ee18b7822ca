//! Output buffers written by parallel tasks, and the tensors made from them.
//!
//! `vec![0.0; n]` zeroes the whole buffer on the calling thread before any task starts (with the
//! heap reused, `calloc` is a `memset`); for the large outputs of the CPU operations that was
//! single-threaded time in every pass. Here each task zeroes its own chunk, in parallel and just
//! before it writes the chunk while it is in cache.

use std::mem::MaybeUninit;

use std::borrow::Cow;

use burn::backend::DType;
use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;
use rayon::prelude::*;

/// An f32 CPU tensor of `shape` holding `v`.
pub(crate) fn tensor(v: Vec<f32>, shape: impl Into<burn::tensor::Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape.into()))
}

/// The values of an f32 CPU tensor, borrowed when it is contiguous.
pub(crate) fn contiguous_f32(t: &FlexTensor) -> Cow<'_, [f32]> {
    assert_eq!(t.dtype(), DType::F32, "the CPU kernels take f32 tensors");
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(t.to_contiguous().as_slice::<f32>().unwrap().to_vec()),
    }
}

/// The `[0]` tensor that stands for a gradient not asked for or a parameter not given.
pub(crate) fn empty() -> FlexTensor {
    tensor(Vec::new(), [0])
}

/// `t`'s values for writing in place, when `t` alone owns them and they are exactly its `len`
/// contiguous elements; `None` when shared (writing would change another tensor) or a view.
pub(crate) fn owned_values(t: &mut FlexTensor, len: usize) -> Option<&mut [f32]> {
    let whole = t.layout().is_contiguous() && t.layout().start_offset() == 0;
    whole
        .then(|| t.try_storage_mut::<f32>())
        .flatten()
        .filter(|buf| buf.len() == len)
}

/// A buffer of `len` values whose `chunk`-sized pieces (the last shorter) are each handed, zeroed,
/// to `f(state, piece index, piece)` on the rayon pool; each thread's `state` comes from `init`.
pub(crate) fn filled_with<S>(
    len: usize,
    chunk: usize,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let mut out: Vec<f32> = Vec::with_capacity(len);
    if len > 0 {
        out.spare_capacity_mut()[..len]
            .par_chunks_mut(chunk.max(1))
            .enumerate()
            .for_each_init(init, |state, (i, piece)| {
                piece.fill(MaybeUninit::new(0.0));
                // SAFETY: every element of `piece` was initialised on the line above, and
                // `MaybeUninit<f32>` has the layout of `f32`.
                let piece = unsafe { &mut *(piece as *mut [MaybeUninit<f32>] as *mut [f32]) };
                f(state, i, piece);
            });
    }
    // SAFETY: the chunks cover `0..len` and each was initialised above.
    unsafe { out.set_len(len) };
    out
}

/// [`filled_with`] without per-thread state.
pub(crate) fn filled(
    len: usize,
    chunk: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    filled_with(len, chunk, || (), |_, i, piece| f(i, piece))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every chunk reaches `f` zeroed, with its index, and the buffer holds what `f` wrote,
    /// including a shorter last chunk.
    #[test]
    fn chunks_arrive_zeroed_and_in_place() {
        let v = filled(10, 4, |i, piece| {
            assert!(piece.iter().all(|&x| x == 0.0));
            for (j, x) in piece.iter_mut().enumerate() {
                *x = (i * 100 + j) as f32;
            }
        });
        let want: Vec<f32> = [0, 1, 2, 3, 100, 101, 102, 103, 200, 201]
            .map(|x| x as f32)
            .to_vec();
        assert_eq!(v, want);
        assert!(filled(0, 4, |_, _| unreachable!()).is_empty());
    }
}
