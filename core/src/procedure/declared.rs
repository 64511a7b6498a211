//! Errors a procedure declares it raises: marked `defined` on the wire, so that oRPC's clients
//! can narrow on them (`isDefinedError`, `safe`), and typed, with their data, in the contract
//! [`crate::typescript`] writes.

use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::Stream;

use super::{Frame, FrameStream};
use crate::error::RpcError;
use crate::sync::Arc;

/// One declared error: its code, and the TypeScript type of its data (`None` for `()`).
#[derive(Clone, Debug)]
pub(crate) struct DeclaredError {
    pub(crate) code: &'static str,
    #[cfg(feature = "typescript")]
    pub(crate) data: Option<super::shape::TypeRef>,
}

/// `error`, marked defined if its code is one of `declared`.
pub(crate) fn mark(declared: &[DeclaredError], error: RpcError) -> RpcError {
    if declared.iter().any(|d| d.code == error.code()) {
        error.defined(true)
    } else {
        error
    }
}

/// A stream's frames, with the error that ends it marked as [`mark`] does.
pub(crate) struct MarkDeclared {
    pub(crate) frames: FrameStream,
    pub(crate) declared: Arc<[DeclaredError]>,
}

impl Stream for MarkDeclared {
    type Item = Frame;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        let this = &mut *self;
        Pin::new(&mut this.frames)
            .poll_next(cx)
            .map(|frame| match frame {
                Some(Frame::Error(error)) => Some(Frame::Error(mark(&this.declared, error))),
                other => other,
            })
    }
}
