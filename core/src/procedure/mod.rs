//! Procedures: typed handlers, built with [`procedure`], and the type-erased form the router
//! stores, which speaks JSON.
//!
//! A procedure is declared on a [`ProcedureBuilder`]: its input type, its middleware (which
//! may refine the context, reject the call, or wrap it), then its handler, as a query, a
//! mutation or a subscription. A handler takes a [`Request`] (the context, the decoded input
//! and, for streams, the id to resume after). At the router's edge the input is decoded from
//! JSON, validated, and every output serialized once to JSON text; every failure on the way
//! becomes an [`RpcError`]. Wire formats are not this module's business.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use futures_core::Stream;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::{ErrorCode, RpcError};
use crate::event::{Event, EventId};
use crate::sync::{arc_dyn, Arc};

mod builder;
mod declared;
mod shape;
mod shared;
mod stream;

pub use builder::{procedure, Next, ProcedureBuilder, Request, TypedProcedure};
pub use shape::Shape;
#[cfg(feature = "typescript")]
pub use shape::Signature;
pub use shared::{Encoding, SharedEvent};
#[cfg(feature = "publisher")]
pub(crate) use stream::item_frames;
pub use stream::{events, Events, IntoEventStream, OutputCheck, StreamItem, Tracked};

/// A value serialized to JSON text, once, ready to be framed by a protocol.
pub type Json = Box<RawValue>;

/// What kind of procedure this is. oRPC treats the three alike; tRPC answers queries on GET,
/// mutations on POST and subscriptions as SSE, and refuses the wrong method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProcedureKind {
    /// Reads; answered once.
    Query,
    /// Changes something; answered once.
    Mutation,
    /// Streams events until it returns, fails or the client goes away.
    Subscription,
}

/// One problem found in an input or an output, with where it is.
///
/// ```
/// use outer_core::procedure::Issue;
/// let issue = Issue::new("must not be empty").at("title");
/// assert_eq!(issue.to_json(), serde_json::json!({"message": "must not be empty", "path": ["title"]}));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Issue {
    /// What is wrong, for a person.
    pub message: String,
    /// Where: object keys and array indices from the root of the value.
    pub path: Vec<Value>,
}

impl Issue {
    /// An issue at the root of the value.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            path: Vec::new(),
        }
    }

    /// Appends an object key to the path.
    pub fn at(mut self, key: impl Into<String>) -> Self {
        self.path.push(Value::String(key.into()));
        self
    }

    /// Appends an array index to the path.
    pub fn at_index(mut self, index: usize) -> Self {
        self.path.push(Value::from(index));
        self
    }

    /// The issue as JSON: `{"message", "path"}`, the shape oRPC's clients read.
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "message": self.message, "path": self.path })
    }
}

impl From<&str> for Issue {
    fn from(message: &str) -> Self {
        Issue::new(message)
    }
}

impl From<String> for Issue {
    fn from(message: String) -> Self {
        Issue::new(message)
    }
}

/// The error for an input that does not decode or validate: 400 `BAD_REQUEST`,
/// `Input validation failed`, with `data.issues`.
pub fn input_error(issues: &[Issue]) -> RpcError {
    validation_error(ErrorCode::BAD_REQUEST, "Input validation failed", issues)
}

/// The error for an output that fails its validator or cannot be serialized: 500
/// `INTERNAL_SERVER_ERROR`, `Output validation failed`, with `data.issues`.
pub fn output_error(issues: &[Issue]) -> RpcError {
    validation_error(
        ErrorCode::INTERNAL_SERVER_ERROR,
        "Output validation failed",
        issues,
    )
}

fn validation_error(code: ErrorCode, message: &str, issues: &[Issue]) -> RpcError {
    let issues: Vec<Value> = issues.iter().map(Issue::to_json).collect();
    RpcError::new(code, message).with_data(serde_json::json!({ "issues": issues }))
}

/// Decodes an input, naming the failing field. A missing input decodes as JSON `null`, so
/// `()` and `Option<T>` inputs accept it.
///
/// ```
/// #[derive(serde::Deserialize, Debug)]
/// struct Post { title: String }
/// let err = outer_core::procedure::decode_input::<Post>(Some(serde_json::json!({"title": 5}))).unwrap_err();
/// assert_eq!(err.status(), 400);
/// assert_eq!(err.data().unwrap()["issues"][0]["path"], serde_json::json!(["title"]));
/// ```
pub fn decode_input<I: DeserializeOwned>(input: Option<Value>) -> Result<I, RpcError> {
    let value = input.unwrap_or(Value::Null);
    serde_path_to_error::deserialize::<_, I>(value).map_err(|err| {
        let path = err
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => Some(Value::from(*index)),
                serde_path_to_error::Segment::Map { key } => Some(Value::String(key.clone())),
                serde_path_to_error::Segment::Enum { variant } => {
                    Some(Value::String(variant.clone()))
                }
                serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        input_error(&[Issue {
            message: err.into_inner().to_string(),
            path,
        }])
    })
}

/// Serializes an output to JSON text; a value serde cannot write (a map with non-string keys,
/// a failing `Serialize` impl) becomes an output error, never a panic.
pub fn encode_output<O: Serialize + ?Sized>(output: &O) -> Result<Json, RpcError> {
    serde_json::value::to_raw_value(output)
        .map_err(|err| output_error(&[Issue::new(err.to_string())]))
}

/// One step of a type-erased stream: an event, then exactly one `Done` or `Error` at the end.
///
/// An event comes as one of two kinds: `Event`, which this stream alone sends (a handler's own
/// events, with any meta), or `Shared`, which every subscriber of a publisher's topic sends and
/// whose wire bytes the protocols make once for all of them.
#[derive(Debug)]
pub enum Frame {
    /// A yielded value with its meta.
    Event(Event<Json>),
    /// A published event, shared with every other stream that sends it.
    Shared(SharedEvent),
    /// The handler returned this value.
    Done(Json),
    /// The handler failed (or an output failed validation).
    Error(RpcError),
}

impl Frame {
    /// Whether this is an event (`Event` or `Shared`), not the stream's end.
    pub fn is_event(&self) -> bool {
        matches!(self, Frame::Event(_) | Frame::Shared(_))
    }

    /// An event's data, whichever kind it is.
    ///
    /// ```
    /// use outer_core::procedure::{Frame, SharedEvent};
    /// let json = serde_json::value::to_raw_value(&5).unwrap();
    /// let frame = Frame::Shared(SharedEvent::new(json, None));
    /// assert_eq!(frame.event_data().unwrap().get(), "5");
    /// ```
    pub fn event_data(&self) -> Option<&RawValue> {
        match self {
            Frame::Event(event) => Some(event.data()),
            Frame::Shared(event) => Some(event.data()),
            Frame::Done(_) | Frame::Error(_) => None,
        }
    }

    /// An event's id, whichever kind it is.
    pub fn event_id(&self) -> Option<&EventId> {
        match self {
            Frame::Event(event) => event.id(),
            Frame::Shared(event) => event.id(),
            Frame::Done(_) | Frame::Error(_) => None,
        }
    }

    /// The same frame with a shared event made a plain [`Event`] (its JSON copied): for tests
    /// and tools that match on one shape of event.
    pub fn unshared(self) -> Frame {
        match self {
            Frame::Shared(event) => Frame::Event(event.to_event()),
            other => other,
        }
    }
}

/// A type-erased event stream, as protocols consume it. Dropping it cancels the handler.
pub struct FrameStream(Pin<Box<dyn Stream<Item = Frame> + Send>>);

impl FrameStream {
    /// Wraps any stream of frames.
    pub fn new(stream: impl Stream<Item = Frame> + Send + 'static) -> Self {
        Self(Box::pin(stream))
    }
}

impl Stream for FrameStream {
    type Item = Frame;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        self.0.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for FrameStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FrameStream")
    }
}

/// The future of a type-erased call: the answer, or the error that refused it.
pub type CallFuture = Pin<Box<dyn Future<Output = Result<Reply, RpcError>> + Send>>;

/// What a call answers once its handler has run: a value, or a stream ready to write.
///
/// An `Err` instead of a `Reply` means the call was refused before anything was sent (an
/// unknown path, a bad input, a middleware or a subscription's setup that said no): the
/// protocols answer it with the error's own HTTP status. Errors after a stream has opened
/// travel in the stream.
pub enum Reply {
    /// A query's or mutation's answer, as JSON.
    Value(Json),
    /// A subscription's events.
    Stream(FrameStream),
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Value(json) => f.debug_tuple("Value").field(json).finish(),
            Reply::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// Which procedure a call is for: what a middleware may want to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallInfo {
    path: Arc<str>,
    kind: ProcedureKind,
}

impl CallInfo {
    /// The procedure's dotted path (`post.live`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Query, mutation or subscription.
    pub fn kind(&self) -> ProcedureKind {
        self.kind
    }
}

/// A type-erased call: the context, the raw JSON input (`None` when absent) and the resume id.
#[derive(Debug)]
#[non_exhaustive]
pub struct Call<Ctx> {
    /// The context built for this request.
    pub ctx: Ctx,
    /// The input as JSON, `None` when the request carried none.
    pub input: Option<Value>,
    /// The id of the last event the client saw.
    pub last_event_id: Option<EventId>,
    /// The path the procedure was called at (set by the [`Router`](crate::Router)).
    pub path: Arc<str>,
}

impl<Ctx> Call<Ctx> {
    /// A call with a context and an input.
    pub fn new(ctx: Ctx, input: Option<Value>) -> Self {
        Self {
            ctx,
            input,
            last_event_id: None,
            path: Arc::from(""),
        }
    }

    /// Sets the id to resume after.
    pub fn with_last_event_id(mut self, id: Option<EventId>) -> Self {
        self.last_event_id = id;
        self
    }

    /// Sets the path the procedure is called at.
    pub fn at(mut self, path: Arc<str>) -> Self {
        self.path = path;
        self
    }
}

pub(crate) type Validator<V> = Arc<ValidateFn<V>>;
pub(crate) type ValidateFn<V> = dyn Fn(&V) -> Result<(), Issue> + Send + Sync;
type ErasedHandler<Ctx> = Arc<HandlerFn<Ctx>>;
type HandlerFn<Ctx> = dyn Fn(Call<Ctx>) -> CallFuture + Send + Sync;

/// A type-erased procedure, as the router stores it. Build one with [`procedure`].
pub struct Procedure<Ctx> {
    kind: ProcedureKind,
    handler: ErasedHandler<Ctx>,
    #[cfg(feature = "typescript")]
    signature: Option<Signature>,
}

impl<Ctx> Clone for Procedure<Ctx> {
    fn clone(&self) -> Self {
        Self {
            kind: self.kind,
            handler: Arc::clone(&self.handler),
            #[cfg(feature = "typescript")]
            signature: self.signature.clone(),
        }
    }
}

impl<Ctx> fmt::Debug for Procedure<Ctx> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Procedure")
            .field("kind", &self.kind)
            .finish()
    }
}

impl<Ctx> Procedure<Ctx> {
    /// A procedure from its kind and a function that answers erased calls: for what the
    /// builder cannot express. The function runs for every call; its future is the call.
    pub fn from_fn(
        kind: ProcedureKind,
        handler: impl Fn(Call<Ctx>) -> CallFuture + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            handler: arc_dyn!(handler => HandlerFn<Ctx>),
            #[cfg(feature = "typescript")]
            signature: None,
        }
    }

    /// The procedure's types, as the builder recorded them (`None` for one made with
    /// [`from_fn`](Self::from_fn): its types are unknown to TypeScript).
    #[cfg(feature = "typescript")]
    pub fn signature(&self) -> Option<&Signature> {
        self.signature.as_ref()
    }

    #[cfg(feature = "typescript")]
    pub(crate) fn with_signature(mut self, signature: Option<Signature>) -> Self {
        self.signature = signature;
        self
    }

    /// Query, mutation or subscription.
    pub fn kind(&self) -> ProcedureKind {
        self.kind
    }

    /// Runs the call: middleware, input decoding and validation, the handler (for a
    /// subscription, its setup). Whatever refuses the call before a stream opens is the `Err`.
    pub fn call(&self, call: Call<Ctx>) -> CallFuture {
        (self.handler)(call)
    }
}

/// Builds the frames for a value that could not even start a stream: one `Error`.
pub fn error_stream(error: RpcError) -> FrameStream {
    FrameStream::new(Once(Some(Frame::Error(error))))
}

struct Once(Option<Frame>);

impl Stream for Once {
    type Item = Frame;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Frame>> {
        Poll::Ready(self.0.take())
    }
}

/// Collects a whole frame stream (for tests and small tools): the events, then the last frame.
pub async fn collect_frames(mut frames: FrameStream) -> Vec<Frame> {
    let mut all = vec![];
    while let Some(frame) = core::future::poll_fn(|cx| Pin::new(&mut frames).poll_next(cx)).await {
        all.push(frame);
    }
    all
}
