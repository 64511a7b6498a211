//! Declaring procedures: [`procedure`] starts a [`ProcedureBuilder`], which carries the input
//! type, the error type and the middleware that every procedure built from it shares.
//!
//! The builder is what keeps handlers free of type annotations: the context, the input and
//! the error type are the builder's, so a closure's argument and its `Ok(..)` need none.

use alloc::boxed::Box;
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::declared::{mark, DeclaredError, MarkDeclared};
use super::shape::Shape;
use super::stream::{IntoEventStream, OutputCheck};
use super::{
    decode_input, encode_output, input_error, output_error, Call, CallFuture, CallInfo,
    FrameStream, Issue, Procedure, ProcedureKind, Reply, ValidateFn, Validator,
};
use crate::error::{ErrorCode, RpcError};
use crate::event::EventId;
use crate::sync::{arc_dyn, Arc};

/// What a handler receives.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Request<Ctx, I> {
    /// The context: what the app built for this request, as the middleware refined it.
    pub ctx: Ctx,
    /// The decoded, validated input.
    pub input: I,
    /// For streams: the id of the last event the client saw, to resume after. oRPC sends it in
    /// the `last-event-id` header, tRPC in the input or the `Last-Event-ID` header. An empty
    /// id is `None`, as a browser means it.
    pub last_event_id: Option<EventId>,
}

/// The rest of a call, as a middleware's [`wrap`](ProcedureBuilder::wrap) sees it: the
/// context so far, which procedure is called, and a way to run it.
pub struct Next<Ctx> {
    ctx: Ctx,
    info: CallInfo,
    rest: Continue<Ctx>,
}

impl<Ctx> Next<Ctx> {
    /// The context the call will run in.
    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// The context, to change before the call runs.
    pub fn ctx_mut(&mut self) -> &mut Ctx {
        &mut self.ctx
    }

    /// Which procedure is called.
    pub fn info(&self) -> &CallInfo {
        &self.info
    }

    /// Runs the rest of the call: later middleware, the input, the handler. For a
    /// subscription it resolves once the stream is set up, before its first event.
    pub fn run(self) -> CallFuture {
        (self.rest)(self.ctx)
    }
}

impl<Ctx> fmt::Debug for Next<Ctx> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next").field("info", &self.info).finish()
    }
}

/// The rest of a call, given the context it runs in.
type Continue<Ctx> = Box<dyn FnOnce(Ctx) -> CallFuture + Send>;

/// A builder's middleware, erased: it turns the app's context into the builder's and runs the
/// rest of the call in it.
type Chain<Base, Ctx> = Arc<ChainFn<Base, Ctx>>;
type ChainFn<Base, Ctx> = dyn Fn(Base, CallInfo, Continue<Ctx>) -> CallFuture + Send + Sync;

/// Starts declaring procedures for a router whose requests carry a `Ctx`: like oRPC's `os`
/// and tRPC's `t.procedure`. Keep the builder, add middleware to it, and build many
/// procedures from it.
///
/// ```
/// use outer_core::{procedure, ErrorCode, Router, RpcError};
///
/// #[derive(Clone)]
/// struct Ctx { token: Option<String> }
/// #[derive(Clone)]
/// struct User { name: String }
///
/// let public = procedure::<Ctx>();
/// // A middleware that refines the context, or refuses the call.
/// let authed = public.refine(|ctx| async move {
///     match ctx.token {
///         Some(name) => Ok(User { name }),
///         None => Err(RpcError::from_code(ErrorCode::UNAUTHORIZED)),
///     }
/// });
/// let router = Router::new()
///     .route("double", public.input::<i64>().query(|req| async move { Ok(req.input * 2) }))
///     .route("me", authed.query(|req| async move { Ok(req.ctx.name) }));
/// # let _ = router;
/// ```
pub fn procedure<Ctx: Send + 'static>() -> ProcedureBuilder<Ctx> {
    ProcedureBuilder {
        chain: arc_dyn!(|ctx, _info, rest: Continue<Ctx>| rest(ctx) => ChainFn<Ctx, Ctx>),
        validate_input: None,
        declared: Arc::from([]),
        types: PhantomData,
    }
}

/// Declares procedures: the input type `I`, the error type `E` handlers return, and the
/// middleware that turns the app's context `Base` into the handlers' `Ctx`.
///
/// Every method takes `&self` and returns a new value, so one builder (say, `authed`) serves
/// any number of procedures. See [`procedure`].
pub struct ProcedureBuilder<Base, Ctx = Base, I = (), E = RpcError> {
    chain: Chain<Base, Ctx>,
    validate_input: Option<Validator<I>>,
    declared: Arc<[DeclaredError]>,
    types: Types<Base, Ctx, I, E>,
}

/// The builder's types, held by no value: `fn` keeps it `Send` and `Sync` whatever they are.
type Types<Base, Ctx, I, E> = PhantomData<fn(Base) -> (Ctx, I, E)>;

impl<Base, Ctx, I, E> Clone for ProcedureBuilder<Base, Ctx, I, E> {
    fn clone(&self) -> Self {
        Self {
            chain: Arc::clone(&self.chain),
            validate_input: self.validate_input.clone(),
            declared: Arc::clone(&self.declared),
            types: PhantomData,
        }
    }
}

impl<Base, Ctx, I, E> fmt::Debug for ProcedureBuilder<Base, Ctx, I, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcedureBuilder")
            .field("validates_input", &self.validate_input.is_some())
            .finish_non_exhaustive()
    }
}

impl<Base, Ctx, I, E> ProcedureBuilder<Base, Ctx, I, E>
where
    Base: Send + 'static,
    Ctx: Send + 'static,
    I: DeserializeOwned + Send + 'static,
    E: Into<RpcError> + 'static,
{
    /// The type the input decodes into: a bad input answers 400 `BAD_REQUEST` "Input
    /// validation failed", with `data.issues[].path` naming the field. Without it the input
    /// is `()`, which accepts none (or `null`). A check set before is dropped.
    pub fn input<I2: DeserializeOwned + Send + 'static>(
        &self,
    ) -> ProcedureBuilder<Base, Ctx, I2, E> {
        ProcedureBuilder {
            chain: Arc::clone(&self.chain),
            validate_input: None,
            declared: Arc::clone(&self.declared),
            types: PhantomData,
        }
    }

    /// Checks each decoded input before the handler sees it; a failure answers 400
    /// `Input validation failed` with the issue.
    pub fn validate_input(
        &self,
        check: impl Fn(&I) -> Result<(), Issue> + Send + Sync + 'static,
    ) -> Self {
        Self {
            chain: Arc::clone(&self.chain),
            validate_input: Some(arc_dyn!(check => ValidateFn<I>)),
            declared: Arc::clone(&self.declared),
            types: PhantomData,
        }
    }

    /// The error type handlers and middleware return: any type that converts into an
    /// [`RpcError`] (the default). A free function that returns its own error names it here.
    ///
    /// ```
    /// # use outer_core::{procedure, ErrorCode, Request, RpcError};
    /// struct NotFound;
    /// impl From<NotFound> for RpcError {
    ///     fn from(_: NotFound) -> Self { RpcError::from_code(ErrorCode::NOT_FOUND) }
    /// }
    /// async fn find(req: Request<(), u32>) -> Result<String, NotFound> {
    ///     if req.input == 1 { Ok("one".into()) } else { Err(NotFound) }
    /// }
    /// let find = procedure::<()>().input::<u32>().error::<NotFound>().query(find);
    /// # let _ = find;
    /// ```
    pub fn error<E2: Into<RpcError> + 'static>(&self) -> ProcedureBuilder<Base, Ctx, I, E2> {
        ProcedureBuilder {
            chain: Arc::clone(&self.chain),
            validate_input: self.validate_input.clone(),
            declared: Arc::clone(&self.declared),
            types: PhantomData,
        }
    }

    /// Adds a middleware that refines the context, or refuses the call: oRPC's `.use()` that
    /// calls `next({ context })`, tRPC's `protectedProcedure`. It runs before the input is
    /// decoded, for every kind of procedure alike; its error answers the call with its own
    /// status (a subscription then sends no stream at all, and runs none).
    ///
    /// ```
    /// # use outer_core::{procedure, ErrorCode, RpcError};
    /// # #[derive(Clone)] struct Session { user: Option<String> }
    /// let authed = procedure::<Session>().refine(|session| async move {
    ///     session.user.ok_or_else(|| RpcError::from_code(ErrorCode::UNAUTHORIZED))
    /// });
    /// let me = authed.query(|req| async move { Ok(req.ctx) }); // req.ctx: String
    /// # let _ = me;
    /// ```
    pub fn refine<C2, F, Fut>(&self, refine: F) -> ProcedureBuilder<Base, C2, I, E>
    where
        C2: Send + 'static,
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C2, E>> + Send + 'static,
    {
        let refine = Arc::new(refine);
        let prev = Arc::clone(&self.chain);
        ProcedureBuilder {
            chain: arc_dyn!(move |base, info, rest: Continue<C2>| {
                let refine = Arc::clone(&refine);
                let step: Continue<Ctx> = Box::new(move |ctx| {
                    let refined = refine(ctx);
                    Box::pin(async move {
                        let ctx = refined.await.map_err(Into::into)?;
                        rest(ctx).await
                    })
                });
                prev(base, info, step)
            } => ChainFn<Base, C2>),
            validate_input: self.validate_input.clone(),
            declared: Arc::clone(&self.declared),
            types: PhantomData,
        }
    }

    /// Adds a middleware around the rest of the call: for timing, logging, or changing the
    /// answer. It gets the [`Next`] step and returns the call's outcome, usually
    /// `next.run().await` with something before and after. For a subscription the rest of
    /// the call ends once its stream is set up; its events come later, through the
    /// [`Reply::Stream`].
    ///
    /// ```
    /// # use outer_core::procedure;
    /// let logged = procedure::<()>().wrap(|next| async move {
    ///     let path = next.info().path().to_owned();
    ///     let answer = next.run().await;
    ///     if let Err(error) = &answer {
    ///         eprintln!("{path} failed: {error}");
    ///     }
    ///     answer
    /// });
    /// # let _ = logged;
    /// ```
    pub fn wrap<F, Fut>(&self, wrap: F) -> Self
    where
        F: Fn(Next<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Reply, RpcError>> + Send + 'static,
    {
        let wrap = Arc::new(wrap);
        let prev = Arc::clone(&self.chain);
        Self {
            chain: arc_dyn!(move |base, info: CallInfo, rest: Continue<Ctx>| {
                let wrap = Arc::clone(&wrap);
                let inner = info.clone();
                let step: Continue<Ctx> = Box::new(move |ctx| {
                    Box::pin(wrap(Next {
                        ctx,
                        info: inner,
                        rest,
                    }))
                });
                prev(base, info, step)
            } => ChainFn<Base, Ctx>),
            validate_input: self.validate_input.clone(),
            declared: Arc::clone(&self.declared),
            types: PhantomData,
        }
    }

    /// Declares an error the procedures built here may raise, with the type of its data (`()`
    /// for none): oRPC's `.errors({ CODE: { data } })`. Such an error goes out marked
    /// `defined`, as oRPC's server marks the errors a procedure declares, so that oRPC's
    /// clients narrow on it (`isDefinedError(error)`, `safe(call)`), its data typed by the
    /// contract `outer_core::typescript` writes (with the `typescript` feature). Raising it
    /// stays the handler's (or a middleware's) business:
    /// `Err(RpcError::from_code(code).with_data(..))`.
    ///
    /// tRPC's client types every error by the router's error shape alone, which carries the
    /// code (`error.data.code`) but no data of the procedure's: the declaration does not reach
    /// its types.
    ///
    /// ```
    /// # use outer_core::{procedure, ErrorCode, RpcError};
    /// #[derive(serde::Serialize)]
    /// struct Taken { by: String }
    /// let claim = procedure::<()>()
    ///     .declares::<Taken>(ErrorCode::CONFLICT)
    ///     .input::<String>()
    ///     .mutation(|req| async move {
    ///         let taken = serde_json::json!({ "by": "ann" });
    ///         Err::<(), _>(RpcError::from_code(ErrorCode::CONFLICT).with_data(taken))
    ///     });
    /// # let _ = claim;
    /// ```
    pub fn declares<D: Shape + 'static>(&self, code: ErrorCode) -> Self {
        let mut declared: alloc::vec::Vec<DeclaredError> = self.declared.iter().cloned().collect();
        declared.retain(|d| d.code != code.name);
        declared.push(DeclaredError {
            code: code.name,
            #[cfg(feature = "typescript")]
            data: (core::any::TypeId::of::<D>() != core::any::TypeId::of::<()>())
                .then(super::shape::TypeRef::of::<D>),
        });
        Self {
            chain: Arc::clone(&self.chain),
            validate_input: self.validate_input.clone(),
            declared: declared.into(),
            types: PhantomData,
        }
    }

    /// A query: reads, and answers once.
    ///
    /// ```
    /// # use outer_core::procedure;
    /// #[derive(serde::Deserialize)] struct Ping { n: i64 }
    /// #[derive(serde::Serialize)] struct Pong { n: i64 }
    /// let ping = procedure::<()>().input::<Ping>().query(|req| async move { Ok(Pong { n: req.input.n }) });
    /// # let _ = ping;
    /// ```
    pub fn query<O, F, Fut>(&self, handler: F) -> TypedProcedure<Base, O>
    where
        I: Shape,
        O: Serialize + Shape + 'static,
        F: Fn(Request<Ctx, I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
    {
        self.unary(ProcedureKind::Query, handler)
    }

    /// A mutation: changes something, and answers once.
    pub fn mutation<O, F, Fut>(&self, handler: F) -> TypedProcedure<Base, O>
    where
        I: Shape,
        O: Serialize + Shape + 'static,
        F: Fn(Request<Ctx, I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
    {
        self.unary(ProcedureKind::Mutation, handler)
    }

    fn unary<O, F, Fut>(&self, kind: ProcedureKind, handler: F) -> TypedProcedure<Base, O>
    where
        I: Shape,
        O: Serialize + Shape + 'static,
        F: Fn(Request<Ctx, I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
    {
        let validate_input = self.validate_input.clone();
        let typed = self.build(
            kind,
            move |request, check: Option<OutputCheck<O>>| {
                let answer = handler(request);
                Box::pin(async move {
                    let output = answer.await.map_err(Into::into)?;
                    if let Some(check) = check {
                        check.check(&output)?;
                    }
                    encode_output(&output).map(Reply::Value)
                })
            },
            validate_input,
        );
        #[cfg(feature = "typescript")]
        let typed = typed.with_signature(super::shape::Signature::unary::<I, O>(Arc::clone(
            &self.declared,
        )));
        typed
    }

    /// A subscription, in two steps: the handler's future is the setup, which may refuse the
    /// call before anything is sent (answered with the error's own status: a 401 reaches a
    /// browser's `EventSource` as a failed connection it does not retry); what it resolves to
    /// is the stream: an [`event_iterator`](crate::event_iterator), a publisher's subscription,
    /// or any `Stream` of events through [`events`](super::events).
    ///
    /// ```
    /// use outer_core::{event_iterator, procedure, tracked};
    ///
    /// #[derive(serde::Deserialize)] struct Range { from: u64, to: u64 }
    /// let counter = procedure::<()>().input::<Range>().subscription(|req| async move {
    ///     // Resume after the last id the client saw (after u64::MAX comes nothing).
    ///     let start = match req.last_event_id {
    ///         Some(id) => id.as_str().parse::<u64>().ok().and_then(|last| last.checked_add(1)),
    ///         None => Some(req.input.from),
    ///     };
    ///     let to = req.input.to;
    ///     Ok(event_iterator(move |mut emit| async move {
    ///         for n in start.into_iter().flat_map(|start| start..=to) {
    ///             emit.send(tracked(n, n)?.with_retry(1000)).await?;
    ///         }
    ///         Ok("done")
    ///     }))
    /// });
    /// # let _ = counter;
    /// ```
    pub fn subscription<S, F, Fut>(&self, handler: F) -> TypedProcedure<Base, S::Item>
    where
        I: Shape,
        S: IntoEventStream,
        S::Item: Shape,
        S::Return: Shape,
        F: Fn(Request<Ctx, I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, E>> + Send + 'static,
    {
        let validate_input = self.validate_input.clone();
        let typed = self.build(
            ProcedureKind::Subscription,
            move |request, check| {
                let setup = handler(request);
                Box::pin(async move {
                    let stream = setup.await.map_err(Into::into)?;
                    Ok(Reply::Stream(stream.into_frames(check)))
                })
            },
            validate_input,
        );
        #[cfg(feature = "typescript")]
        let typed = typed.with_signature(super::shape::Signature::stream::<I, S::Item, S::Return>(
            S::TRACKED,
            Arc::clone(&self.declared),
        ));
        typed
    }

    /// The procedure for a handler that turns a decoded request into the call's future.
    fn build<O, H>(
        &self,
        kind: ProcedureKind,
        handler: H,
        validate_input: Option<Validator<I>>,
    ) -> TypedProcedure<Base, O>
    where
        O: 'static,
        H: Fn(Request<Ctx, I>, Option<OutputCheck<O>>) -> CallFuture + Send + Sync + 'static,
    {
        let chain = Arc::clone(&self.chain);
        let declared = Arc::clone(&self.declared);
        let handler = Arc::new(handler);
        TypedProcedure {
            kind,
            run: arc_dyn!(move |call: Call<Base>, check: Option<OutputCheck<O>>| {
                let Call {
                    ctx,
                    input,
                    last_event_id,
                    path,
                } = call;
                let handler = Arc::clone(&handler);
                let validate_input = validate_input.clone();
                // Decoded only once the middleware let the call through: an unauthorized
                // call with a bad input is told it is unauthorized, as in oRPC and tRPC.
                let rest: Continue<Ctx> = Box::new(move |ctx| {
                    match decode_and_check::<I>(input, validate_input.as_ref()) {
                        Ok(input) => handler(
                            Request {
                                ctx,
                                input,
                                last_event_id,
                            },
                            check,
                        ),
                        Err(error) => Box::pin(core::future::ready(Err(error))),
                    }
                });
                let answer = chain(ctx, CallInfo { path, kind }, rest);
                if declared.is_empty() {
                    return answer;
                }
                let declared = Arc::clone(&declared);
                Box::pin(async move {
                    match answer.await {
                        Err(error) => Err(mark(&declared, error)),
                        Ok(Reply::Stream(frames)) => {
                            Ok(Reply::Stream(FrameStream::new(MarkDeclared {
                                frames,
                                declared,
                            })))
                        }
                        value => value,
                    }
                })
            } => TypedRunFn<Base, O>),
            validate_output: None,
            #[cfg(feature = "typescript")]
            signature: None,
        }
    }
}

fn decode_and_check<I: DeserializeOwned>(
    input: Option<serde_json::Value>,
    check: Option<&Validator<I>>,
) -> Result<I, RpcError> {
    let input = decode_input::<I>(input)?;
    if let Some(check) = check {
        check(&input).map_err(|issue| input_error(&[issue]))?;
    }
    Ok(input)
}

type TypedRun<Base, O> = Arc<TypedRunFn<Base, O>>;
type TypedRunFn<Base, O> = dyn Fn(Call<Base>, Option<OutputCheck<O>>) -> CallFuture + Send + Sync;

/// A procedure as its builder made it, output type known: add an output check, then give it
/// to [`Router::route`](crate::Router::route), which erases it into a [`Procedure`].
pub struct TypedProcedure<Ctx, O> {
    kind: ProcedureKind,
    run: TypedRun<Ctx, O>,
    validate_output: Option<OutputCheck<O>>,
    #[cfg(feature = "typescript")]
    signature: Option<super::shape::Signature>,
}

impl<Ctx, O> fmt::Debug for TypedProcedure<Ctx, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedProcedure")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl<Ctx, O> TypedProcedure<Ctx, O> {
    #[cfg(feature = "typescript")]
    fn with_signature(mut self, signature: super::shape::Signature) -> Self {
        self.signature = Some(signature);
        self
    }

    /// Query, mutation or subscription.
    pub fn kind(&self) -> ProcedureKind {
        self.kind
    }

    /// Checks each output before it is sent: a query's or mutation's answer, or each event of
    /// a subscription (oRPC's `eventIterator(schema)`, tRPC's `zAsyncIterable`). A failure
    /// answers 500 `Output validation failed`; a stream ends with it, and its handler is
    /// dropped at once.
    pub fn validate_output(
        mut self,
        check: impl Fn(&O) -> Result<(), Issue> + Send + Sync + 'static,
    ) -> Self {
        self.validate_output = Some(OutputCheck::new(check));
        self
    }
}

impl<Ctx: 'static, O: 'static> From<TypedProcedure<Ctx, O>> for Procedure<Ctx> {
    fn from(typed: TypedProcedure<Ctx, O>) -> Self {
        let TypedProcedure {
            kind,
            run,
            validate_output,
            #[cfg(feature = "typescript")]
            signature,
        } = typed;
        let procedure = Procedure::from_fn(kind, move |call| run(call, validate_output.clone()));
        #[cfg(feature = "typescript")]
        let procedure = procedure.with_signature(signature);
        procedure
    }
}

/// The error an output check's issue becomes.
pub(crate) fn failed_output(issue: Issue) -> RpcError {
    output_error(&[issue])
}
