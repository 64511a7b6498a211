//! Procedures: typed handlers, and their type-erased form that speaks JSON.
//!
//! A handler takes a [`Request`] (the per-request context, the decoded input and, for streams,
//! the id to resume after) and returns a value or an [`EventIterator`]. At the router's edge the
//! input is decoded from JSON, validated, and the output serialized once to JSON text; every
//! failure on the way becomes an [`RpcError`]. Wire formats are not this module's business.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
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
use crate::iterator::EventIterator;

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

/// What a handler receives.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Request<Ctx, I> {
    /// The context the server built for this request (see [`crate::App`]).
    pub ctx: Ctx,
    /// The decoded, validated input.
    pub input: I,
    /// For streams: the id of the last event the client saw, to resume after. oRPC sends it in
    /// the `last-event-id` header, tRPC in the input or the `Last-Event-ID` header.
    pub last_event_id: Option<EventId>,
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
#[derive(Debug)]
pub enum Frame {
    /// A yielded value with its meta.
    Event(Event<Json>),
    /// The handler returned this value.
    Done(Json),
    /// The handler failed (or an output failed validation).
    Error(RpcError),
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

/// The future of a type-erased unary call.
pub type UnaryFuture = Pin<Box<dyn Future<Output = Result<Json, RpcError>> + Send>>;

/// What calling a procedure gives: one answer, or a stream.
pub enum Response {
    /// A query's or mutation's answer.
    Unary(UnaryFuture),
    /// A subscription's events.
    Stream(FrameStream),
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Response::Unary(_) => f.write_str("Response::Unary"),
            Response::Stream(_) => f.write_str("Response::Stream"),
        }
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
}

impl<Ctx> Call<Ctx> {
    /// A call with a context and an input.
    pub fn new(ctx: Ctx, input: Option<Value>) -> Self {
        Self {
            ctx,
            input,
            last_event_id: None,
        }
    }

    /// Sets the id to resume after.
    pub fn with_last_event_id(mut self, id: Option<EventId>) -> Self {
        self.last_event_id = id;
        self
    }
}

type Validator<V> = Arc<dyn Fn(&V) -> Result<(), Issue> + Send + Sync>;
type ErasedHandler<Ctx> = Arc<dyn Fn(Call<Ctx>) -> Result<Response, RpcError> + Send + Sync>;

/// A type-erased procedure, as the router stores it. Build one with [`query`], [`mutation`] or
/// [`subscription`].
pub struct Procedure<Ctx> {
    kind: ProcedureKind,
    handler: ErasedHandler<Ctx>,
}

impl<Ctx> Clone for Procedure<Ctx> {
    fn clone(&self) -> Self {
        Self {
            kind: self.kind,
            handler: Arc::clone(&self.handler),
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
    /// Query, mutation or subscription.
    pub fn kind(&self) -> ProcedureKind {
        self.kind
    }

    /// Decodes and validates the input, then runs the handler. Errors found before the handler
    /// runs (input) come back as `Err`; the handler's own come through the response.
    pub fn call(&self, call: Call<Ctx>) -> Result<Response, RpcError> {
        (self.handler)(call)
    }
}

/// A typed query or mutation, before it is erased into a [`Procedure`].
pub struct Unary<Ctx, I, O> {
    kind: ProcedureKind,
    handler: Arc<dyn Fn(Request<Ctx, I>) -> UnaryTyped<O> + Send + Sync>,
    validate_input: Option<Validator<I>>,
    validate_output: Option<Validator<O>>,
}

type UnaryTyped<O> = Pin<Box<dyn Future<Output = Result<O, RpcError>> + Send>>;

impl<Ctx, I, O> fmt::Debug for Unary<Ctx, I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unary").field("kind", &self.kind).finish()
    }
}

/// A query: a handler that reads and answers once.
///
/// ```
/// use outer_core::procedure::{query, Request};
/// use outer_core::RpcError;
/// #[derive(serde::Deserialize)] struct Ping { n: i64 }
/// #[derive(serde::Serialize)] struct Pong { n: i64 }
/// let ping = query(|req: Request<(), Ping>| async move { Ok::<_, RpcError>(Pong { n: req.input.n }) });
/// # let _ = ping;
/// ```
pub fn query<Ctx, I, O, E, F, Fut>(handler: F) -> Unary<Ctx, I, O>
where
    F: Fn(Request<Ctx, I>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
    E: Into<RpcError>,
{
    unary(ProcedureKind::Query, handler)
}

/// A mutation: a handler that changes something and answers once.
pub fn mutation<Ctx, I, O, E, F, Fut>(handler: F) -> Unary<Ctx, I, O>
where
    F: Fn(Request<Ctx, I>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
    E: Into<RpcError>,
{
    unary(ProcedureKind::Mutation, handler)
}

fn unary<Ctx, I, O, E, F, Fut>(kind: ProcedureKind, handler: F) -> Unary<Ctx, I, O>
where
    F: Fn(Request<Ctx, I>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
    E: Into<RpcError>,
{
    Unary {
        kind,
        handler: Arc::new(move |request| {
            let answer = handler(request);
            Box::pin(async move { answer.await.map_err(Into::into) })
        }),
        validate_input: None,
        validate_output: None,
    }
}

impl<Ctx, I, O> Unary<Ctx, I, O> {
    /// Checks each decoded input before the handler sees it; a failure answers 400
    /// `Input validation failed` with the issue.
    pub fn validate_input(
        mut self,
        check: impl Fn(&I) -> Result<(), Issue> + Send + Sync + 'static,
    ) -> Self {
        self.validate_input = Some(Arc::new(check));
        self
    }

    /// Checks each output before it is sent; a failure answers 500 `Output validation failed`.
    pub fn validate_output(
        mut self,
        check: impl Fn(&O) -> Result<(), Issue> + Send + Sync + 'static,
    ) -> Self {
        self.validate_output = Some(Arc::new(check));
        self
    }
}

fn decode_and_check<I: DeserializeOwned>(
    input: Option<Value>,
    check: Option<&Validator<I>>,
) -> Result<I, RpcError> {
    let input = decode_input::<I>(input)?;
    if let Some(check) = check {
        check(&input).map_err(|issue| input_error(&[issue]))?;
    }
    Ok(input)
}

impl<Ctx, I, O> From<Unary<Ctx, I, O>> for Procedure<Ctx>
where
    Ctx: 'static,
    I: DeserializeOwned + 'static,
    O: Serialize + 'static,
{
    fn from(unary: Unary<Ctx, I, O>) -> Self {
        let Unary {
            kind,
            handler,
            validate_input,
            validate_output,
        } = unary;
        Procedure {
            kind,
            handler: Arc::new(move |call: Call<Ctx>| {
                let input = decode_and_check::<I>(call.input, validate_input.as_ref())?;
                let answer = handler(Request {
                    ctx: call.ctx,
                    input,
                    last_event_id: call.last_event_id,
                });
                let check = validate_output.clone();
                Ok(Response::Unary(Box::pin(async move {
                    let output = answer.await?;
                    if let Some(check) = check {
                        check(&output).map_err(|issue| output_error(&[issue]))?;
                    }
                    encode_output(&output)
                })))
            }),
        }
    }
}

type StreamHandler<Ctx, I, T, R> =
    Arc<dyn Fn(Request<Ctx, I>) -> EventIterator<T, R> + Send + Sync>;

/// A typed subscription, before it is erased into a [`Procedure`].
pub struct Streaming<Ctx, I, T, R> {
    handler: StreamHandler<Ctx, I, T, R>,
    validate_input: Option<Validator<I>>,
    validate_output: Option<Validator<T>>,
}

impl<Ctx, I, T, R> fmt::Debug for Streaming<Ctx, I, T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Streaming")
    }
}

/// A subscription: a handler that returns an [`EventIterator`].
///
/// ```
/// use outer_core::procedure::{subscription, Request};
/// use outer_core::{event_iterator, tracked, RpcError};
///
/// #[derive(serde::Deserialize)] struct Range { from: u64, to: u64 }
/// let counter = subscription(|req: Request<(), Range>| {
///     // Resume after the last id the client saw (after u64::MAX comes nothing).
///     let start = match req.last_event_id.and_then(|id| id.as_str().parse::<u64>().ok()) {
///         Some(last) => last.checked_add(1),
///         None => Some(req.input.from),
///     };
///     let to = req.input.to;
///     event_iterator(move |mut emit| async move {
///         for n in start.into_iter().flat_map(|start| start..=to) {
///             emit.send(tracked(n, n)?.with_retry(1000)).await?;
///         }
///         Ok::<_, RpcError>("done")
///     })
/// });
/// # let _ = counter;
/// ```
pub fn subscription<Ctx, I, T, R, F>(handler: F) -> Streaming<Ctx, I, T, R>
where
    F: Fn(Request<Ctx, I>) -> EventIterator<T, R> + Send + Sync + 'static,
{
    Streaming {
        handler: Arc::new(handler),
        validate_input: None,
        validate_output: None,
    }
}

impl<Ctx, I, T, R> Streaming<Ctx, I, T, R> {
    /// Checks each decoded input before the handler sees it; a failure answers 400
    /// `Input validation failed`.
    pub fn validate_input(
        mut self,
        check: impl Fn(&I) -> Result<(), Issue> + Send + Sync + 'static,
    ) -> Self {
        self.validate_input = Some(Arc::new(check));
        self
    }

    /// Checks each yielded value (oRPC's `eventIterator(schema)`, tRPC's `zAsyncIterable`): a
    /// value that fails ends the stream with 500 `Output validation failed`, and the handler is
    /// dropped at once.
    pub fn validate_output(
        mut self,
        check: impl Fn(&T) -> Result<(), Issue> + Send + Sync + 'static,
    ) -> Self {
        self.validate_output = Some(Arc::new(check));
        self
    }
}

impl<Ctx, I, T, R> From<Streaming<Ctx, I, T, R>> for Procedure<Ctx>
where
    Ctx: 'static,
    I: DeserializeOwned + 'static,
    T: Serialize + Send + 'static,
    R: Serialize + Send + 'static,
{
    fn from(streaming: Streaming<Ctx, I, T, R>) -> Self {
        let Streaming {
            handler,
            validate_input,
            validate_output,
        } = streaming;
        Procedure {
            kind: ProcedureKind::Subscription,
            handler: Arc::new(move |call: Call<Ctx>| {
                let input = decode_and_check::<I>(call.input, validate_input.as_ref())?;
                let events = handler(Request {
                    ctx: call.ctx,
                    input,
                    last_event_id: call.last_event_id,
                });
                Ok(Response::Stream(FrameStream::new(ErasedEvents {
                    events: Some(events),
                    check: validate_output.clone(),
                })))
            }),
        }
    }
}

/// Turns a typed [`EventIterator`] into frames: each event's data serialized once, the return
/// value as `Done`, a failure as `Error`; the handler is dropped as soon as the stream ends.
struct ErasedEvents<T, R> {
    events: Option<EventIterator<T, R>>,
    check: Option<Validator<T>>,
}

impl<T, R> Unpin for ErasedEvents<T, R> {}

impl<T: Serialize, R: Serialize> Stream for ErasedEvents<T, R> {
    type Item = Frame;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        let this = &mut *self;
        let Some(events) = this.events.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = match Pin::new(&mut *events).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(Ok(event))) => match erase_event(event, this.check.as_ref()) {
                Ok(event) => return Poll::Ready(Some(Frame::Event(event))),
                Err(error) => Frame::Error(error),
            },
            Poll::Ready(Some(Err(error))) => Frame::Error(error),
            Poll::Ready(None) => match events.take_return() {
                Some(value) => match encode_output(&value) {
                    Ok(json) => Frame::Done(json),
                    Err(error) => Frame::Error(error),
                },
                // An iterator ends without a value only after an error it already yielded.
                None => Frame::Error(RpcError::internal("the event stream ended twice")),
            },
        };
        // The stream is over: drop the handler now so its cleanup runs before the last frame
        // is even written.
        this.events = None;
        Poll::Ready(Some(frame))
    }
}

fn erase_event<T: Serialize>(
    event: Event<T>,
    check: Option<&Validator<T>>,
) -> Result<Event<Json>, RpcError> {
    if let Some(check) = check {
        check(event.data()).map_err(|issue| output_error(&[issue]))?;
    }
    let (data, meta) = event.into_parts();
    Ok(Event::with_meta(encode_output(&data)?, meta))
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
