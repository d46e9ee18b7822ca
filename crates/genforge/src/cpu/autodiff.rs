//! The one way this module registers a CPU kernel with burn's autodiff.
//!
//! Every kernel here is an operation of the inner (Flex) backend; its `Autodiff` implementation
//! runs it on the inner tensors and records a [`Backward`] step whose state the closure returns.
//! burn 0.22 has first-order gradients only, so a kernel's own backward is never recorded.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend};

/// Runs `run` on the inner tensors of `inputs` and records it with `op`. `run` gets `tracked`
/// (whether the graph needs a backward step) and returns the output with, when tracked, the
/// state `op` keeps for its backward step (so untracked calls keep nothing alive).
pub(crate) fn record<B, C, O, const N: usize>(
    op: O,
    inputs: [FloatTensor<Autodiff<B, C>>; N],
    run: impl FnOnce([FloatTensor<B>; N], bool) -> (FloatTensor<B>, Option<O::State>),
) -> FloatTensor<Autodiff<B, C>>
where
    B: Backend,
    C: CheckpointStrategy,
    O: Backward<B, N>,
{
    let prep = op.prepare::<C>(inputs.each_ref().map(|x| x.node()));
    let inner = inputs.map(|x| x.into_primitive());
    match prep.compute_bound().stateful() {
        OpsKind::Tracked(prep) => match run(inner, true) {
            (y, Some(state)) => prep.finish(state, y),
            (_, None) => unreachable!("a tracked kernel call returns its backward state"),
        },
        OpsKind::UnTracked(prep) => prep.finish(run(inner, false).0),
    }
}

/// The backward step of a one-input operation whose gradient is `f(saved, g)`, with one saved
/// tensor (its input or its output).
pub(crate) struct SavedBackward<B: Backend> {
    f: fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
}

impl<B: Backend> std::fmt::Debug for SavedBackward<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SavedBackward")
    }
}

impl<B: Backend> Backward<B, 1> for SavedBackward<B> {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (saved, f) = (ops.state, self.f);
        unary::<B, _>(ops.parents, ops.node, grads, |g| f(saved, g));
    }
}

/// What a [`SavedBackward`] step keeps of its operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Saved {
    Input,
    Output,
}

/// `forward` recorded with the backward step `backward(saved, g)`.
pub(crate) fn record_saved<B: Backend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    forward: fn(FloatTensor<B>) -> FloatTensor<B>,
    saved: Saved,
    backward: fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
) -> FloatTensor<Autodiff<B, C>> {
    record::<B, C, _, 1>(SavedBackward { f: backward }, [x], |[x], tracked| {
        if !tracked {
            return (forward(x), None);
        }
        match saved {
            Saved::Output => {
                let y = forward(x);
                (y.clone(), Some(y))
            }
            Saved::Input => (forward(x.clone()), Some(x)),
        }
    })
}

/// A kernel's backward called on autodiff tensors: only reached if a second derivative were
/// taken (burn has none), so it runs untracked on the inner tensors.
pub(crate) fn untracked<B: Backend, C: CheckpointStrategy, const N: usize>(
    inputs: [FloatTensor<Autodiff<B, C>>; N],
    f: impl FnOnce([FloatTensor<B>; N]) -> FloatTensor<B>,
) -> FloatTensor<Autodiff<B, C>> {
    constant::<B, C>(f(inputs.map(|x| x.into_primitive())))
}

/// An inner tensor as an autodiff tensor no gradient flows through.
pub(crate) fn constant<B: Backend, C: CheckpointStrategy>(
    t: FloatTensor<B>,
) -> FloatTensor<Autodiff<B, C>> {
    <Autodiff<B, C> as AutodiffBackend>::from_inner(t)
}

/// Hands each tracked parent (`Some` id) its gradient, for operations of several inputs whose
/// backward computes only the gradients asked for.
pub(crate) fn register_grads<B: Backend, const N: usize>(
    grads: &mut Gradients,
    parents: [Option<NodeId>; N],
    each: [FloatTensor<B>; N],
) {
    for (id, grad) in parents.into_iter().zip(each) {
        if let Some(id) = id {
            grads.register::<B>(id, grad);
        }
    }
}
