//! Middleware and the context, on queries and subscriptions alike, as a caller sees them:
//! through `App::call` and through the bytes each protocol's `handle` answers. A refine hands
//! the handler a new context or refuses the call (then nothing of the procedure runs, a
//! subscription's stream least of all); a wrap runs around the rest of the call and may change
//! its answer; both run before the input is decoded; the context builder is async and reads the
//! whole request head.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::executor::block_on;
use futures::StreamExt;
use outer_core::procedure::{collect_frames, Frame, FrameStream};
use outer_core::protocol::orpc::{self, OrpcOptions};
use outer_core::protocol::trpc::{self, TrpcOptions};
use outer_core::protocol::{Body, HttpResponse};
use outer_core::{
    event_iterator, procedure, App, ErrorCode, EventIterator, Reply, RequestHead, Router, RpcError,
};
use serde::Deserialize;
use serde_json::{json, Value};

/// What a request carries before any middleware: the bearer token, if any.
#[derive(Clone, Debug)]
struct Ctx {
    token: Option<String>,
}

/// What `authed` procedures get instead.
#[derive(Clone, Debug)]
struct User {
    name: String,
}

#[derive(Deserialize)]
struct Ping {
    n: i64,
}

/// Counts how often something ran.
#[derive(Clone, Default)]
struct Count(Arc<AtomicUsize>);

impl Count {
    fn hit(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Lines written by middleware and handlers, in the order they ran.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, line: impl Into<String>) {
        self.0.lock().unwrap().push(line.into());
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Pending once, then ready: a context builder or middleware that really waits.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn yield_once() -> YieldOnce {
    YieldOnce(false)
}

/// An app whose `authed` builder refines the token into a `User` (or refuses with 401), with
/// counters for what ran.
struct Fixture {
    app: App<Ctx>,
    /// The context builder's runs.
    built: Count,
    /// The refine's runs.
    refined: Count,
    /// Handlers and subscription setups that ran.
    handled: Count,
    /// Subscription streams that started.
    streamed: Count,
}

impl Fixture {
    fn new() -> Self {
        let (built, refined) = (Count::default(), Count::default());
        let (handled, streamed) = (Count::default(), Count::default());
        let os = procedure::<Ctx>();
        let authed = os.refine({
            let refined = refined.clone();
            move |ctx| {
                refined.hit();
                async move {
                    // A session lookup would wait here.
                    yield_once().await;
                    match ctx.token {
                        Some(name) => Ok(User { name }),
                        None => Err(RpcError::new(ErrorCode::UNAUTHORIZED, "sign in first")),
                    }
                }
            }
        });
        let router = Router::new()
            .route("public", os.query(|_| async { Ok("hello") }))
            .route("me", {
                let handled = handled.clone();
                authed.query(move |req| {
                    handled.hit();
                    async move { Ok(req.ctx.name) }
                })
            })
            .route("live", {
                let (handled, streamed) = (handled.clone(), streamed.clone());
                authed.subscription(move |req| {
                    handled.hit();
                    let events = greet(req.ctx.name, None, streamed.clone());
                    async move { Ok(events) }
                })
            })
            .route("echo", {
                let handled = handled.clone();
                authed.input::<Ping>().query(move |req| {
                    handled.hit();
                    async move { Ok(json!({ "user": req.ctx.name, "n": req.input.n })) }
                })
            })
            .route("echo.live", {
                let (handled, streamed) = (handled.clone(), streamed.clone());
                authed.input::<Ping>().subscription(move |req| {
                    handled.hit();
                    let events = greet(req.ctx.name, Some(req.input.n), streamed.clone());
                    async move { Ok(events) }
                })
            });
        let app = App::new(router, {
            let built = built.clone();
            move |head| {
                built.hit();
                async move {
                    let token = head
                        .header("authorization")
                        .and_then(|value| value.strip_prefix("Bearer "))
                        .map(String::from);
                    Ok(Ctx { token })
                }
            }
        });
        Fixture {
            app,
            built,
            refined,
            handled,
            streamed,
        }
    }
}

/// The stream of `live` and `echo.live`: the user's name, then `n` if given; counted in
/// `streamed` when it starts.
fn greet(name: String, n: Option<i64>, streamed: Count) -> EventIterator<Value, &'static str> {
    event_iterator(move |mut emit| async move {
        streamed.hit();
        emit.send_value(json!(name)).await?;
        if let Some(n) = n {
            emit.send_value(json!(n)).await?;
        }
        Ok("done")
    })
}

fn head(method: &str, path: &str, user: Option<&str>) -> RequestHead {
    let head = RequestHead::new(method, path);
    match user {
        Some(name) => head.with_header("Authorization", format!("Bearer {name}")),
        None => head,
    }
}

/// `App::call` as the user `user` (none: no token).
fn call(
    app: &App<Ctx>,
    user: Option<&str>,
    path: &str,
    input: Option<Value>,
) -> Result<Reply, RpcError> {
    block_on(app.call(head("POST", "/", user), path, input, None))
}

fn value(reply: Result<Reply, RpcError>) -> Value {
    match reply.unwrap() {
        Reply::Value(json) => serde_json::from_str(json.get()).unwrap(),
        Reply::Stream(_) => panic!("expected a value"),
    }
}

/// A stream's events as JSON, then its return value (`Err` for an error frame).
fn stream(reply: Result<Reply, RpcError>) -> (Vec<Value>, Result<Value, RpcError>) {
    let Reply::Stream(frames) = reply.unwrap() else {
        panic!("expected a stream")
    };
    let mut events = Vec::new();
    for frame in block_on(collect_frames(frames)) {
        match frame {
            Frame::Event(_) | Frame::Shared(_) => {
                events.push(serde_json::from_str(frame.event_data().unwrap().get()).unwrap())
            }
            Frame::Done(json) => return (events, Ok(serde_json::from_str(json.get()).unwrap())),
            Frame::Error(error) => return (events, Err(error)),
        }
    }
    panic!("a stream without its last frame")
}

/// oRPC: POST `/rpc{route}` with `body`.
fn orpc<C>(app: &App<C>, head: RequestHead, route: &str, body: &[u8]) -> (u16, String) {
    let response = block_on(orpc::handle(
        app,
        head,
        route,
        body,
        &OrpcOptions::default(),
        None,
    ));
    (response.status, text(response))
}

/// tRPC: GET `/trpc{route}?{query}`.
fn trpc<C: Clone>(app: &App<C>, head: RequestHead, route: &str, query: &str) -> (u16, String) {
    let options = TrpcOptions {
        ping: None,
        ..TrpcOptions::default()
    };
    let response = block_on(trpc::handle(app, head, route, query, b"", &options, None));
    (response.status, text(response))
}

fn text(response: HttpResponse) -> String {
    match response.body {
        Body::Full(bytes) => String::from_utf8(bytes).unwrap(),
        Body::Events(events) => {
            String::from_utf8(block_on(events.collect::<Vec<_>>()).concat()).unwrap()
        }
    }
}

/// `input=` for a tRPC GET: the JSON, percent-encoded.
fn input(json: Value) -> String {
    let text = json.to_string();
    let escaped: String = text
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("input={escaped}")
}

#[test]
fn refine_hands_the_handler_the_refined_context_in_queries_and_subscriptions() {
    let f = Fixture::new();
    let app = &f.app;

    assert_eq!(value(call(app, Some("ada"), "me", None)), json!("ada"));
    let (events, done) = stream(call(app, Some("ada"), "live", None));
    assert_eq!((events, done.unwrap()), (vec![json!("ada")], json!("done")));

    assert_eq!(
        orpc(app, head("POST", "/rpc/me", Some("ada")), "/me", b""),
        (200, r#"{"json":"ada"}"#.into())
    );
    assert_eq!(
        orpc(app, head("POST", "/rpc/live", Some("ada")), "/live", b""),
        (
            200,
            ": \n\nevent: message\ndata: {\"json\":\"ada\"}\n\n\
             event: done\ndata: {\"json\":\"done\"}\n\n"
                .into()
        )
    );

    assert_eq!(
        trpc(app, head("GET", "/trpc/me", Some("ada")), "/me", ""),
        (200, r#"{"result":{"data":"ada"}}"#.into())
    );
    assert_eq!(
        trpc(app, head("GET", "/trpc/live", Some("ada")), "/live", ""),
        (
            200,
            "event: connected\ndata: {}\n\n\n\
             data: \"ada\"\n\n\n\
             event: return\ndata: \n\n\n"
                .into()
        )
    );
    assert_eq!(
        (f.refined.get(), f.handled.get(), f.streamed.get()),
        (6, 6, 3)
    );
}

#[test]
fn a_refine_that_refuses_answers_401_and_runs_no_handler_and_no_stream() {
    let f = Fixture::new();
    let app = &f.app;
    for path in ["me", "live"] {
        let error = call(app, None, path, None).unwrap_err();
        assert_eq!(
            (error.code(), error.status(), error.message()),
            ("UNAUTHORIZED", 401, "sign in first")
        );

        let route = format!("/{path}");
        assert_eq!(
            orpc(app, head("POST", "/rpc", None), &route, b""),
            (
                401,
                r#"{"json":{"defined":false,"code":"UNAUTHORIZED","status":401,"message":"sign in first"}}"#
                    .into()
            ),
            "oRPC {path}"
        );
        // A subscription too: the status and tRPC's error body, not a stream.
        assert_eq!(
            trpc(app, head("GET", "/trpc", None), &route, ""),
            (
                401,
                format!(
                    r#"{{"error":{{"message":"sign in first","code":-32001,"data":{{"code":"UNAUTHORIZED","httpStatus":401,"path":"{path}"}}}}}}"#
                )
            ),
            "tRPC {path}"
        );
    }
    assert_eq!(f.refined.get(), 6, "the refine ran for every call");
    assert_eq!(f.handled.get(), 0, "no handler and no setup ran");
    assert_eq!(f.streamed.get(), 0, "no stream started");
    // The builder the refine was added to is untouched.
    assert_eq!(value(call(app, None, "public", None)), json!("hello"));
}

#[test]
fn middleware_runs_before_the_input_is_decoded() {
    let f = Fixture::new();
    let app = &f.app;
    let bad = json!({ "n": "not a number" });
    for path in ["echo", "echo.live"] {
        // Unauthorized and a bad input: told it is unauthorized.
        let error = call(app, None, path, Some(bad.clone())).unwrap_err();
        assert_eq!(error.status(), 401, "{path}");
        let route = format!("/{}", path.replace('.', "/"));
        let (status, _) = orpc(
            app,
            head("POST", "/rpc", None),
            &route,
            br#"{"json":{"n":"x"}}"#,
        );
        assert_eq!(status, 401, "oRPC {path}");
        let (status, body) = trpc(
            app,
            head("GET", "/trpc", None),
            &format!("/{path}"),
            &input(bad.clone()),
        );
        assert_eq!(status, 401, "tRPC {path}");
        assert!(body.contains("\"UNAUTHORIZED\""), "{body}");

        // Signed in, the same input is the input error it is.
        let error = call(app, Some("ada"), path, Some(bad.clone())).unwrap_err();
        assert_eq!(
            (error.status(), error.message()),
            (400, "Input validation failed")
        );
        let (status, _) = trpc(
            app,
            head("GET", "/trpc", Some("ada")),
            &format!("/{path}"),
            &input(bad.clone()),
        );
        assert_eq!(status, 400, "tRPC {path}");
    }
    assert_eq!(f.handled.get(), 0);
    assert_eq!(f.streamed.get(), 0);

    assert_eq!(
        value(call(app, Some("ada"), "echo", Some(json!({"n": 2})))),
        json!({"user": "ada", "n": 2})
    );
    let (events, _) = stream(call(app, Some("ada"), "echo.live", Some(json!({"n": 2}))));
    assert_eq!(events, [json!("ada"), json!(2)]);
}

#[test]
fn one_builder_serves_many_procedures_and_builds_on_further() {
    let f = Fixture::new();
    let app = &f.app;
    // Four procedures share `authed`: one refine per call, each handler sees the user.
    assert_eq!(value(call(app, Some("ada"), "me", None)), json!("ada"));
    assert_eq!(
        value(call(app, Some("bob"), "echo", Some(json!({"n": 1})))),
        json!({"user": "bob", "n": 1})
    );
    assert_eq!(stream(call(app, Some("cy"), "live", None)).0, [json!("cy")]);
    assert_eq!(
        stream(call(app, Some("di"), "echo.live", Some(json!({"n": 3})))).0,
        [json!("di"), json!(3)]
    );
    assert_eq!((f.refined.get(), f.handled.get()), (4, 4));

    // A builder made from a builder keeps its middleware and adds its own, for every
    // procedure made from it.
    #[derive(Clone)]
    struct Admin(String);
    let authed = procedure::<Ctx>().refine(|ctx| async move {
        ctx.token
            .map(|name| User { name })
            .ok_or_else(|| RpcError::from_code(ErrorCode::UNAUTHORIZED))
    });
    let admin = authed.refine(|user| async move {
        if user.name == "root" {
            Ok(Admin(user.name))
        } else {
            Err(RpcError::new(ErrorCode::FORBIDDEN, "admins only"))
        }
    });
    let router = Router::new()
        .route(
            "whoami",
            authed.query(|req| async move { Ok(req.ctx.name) }),
        )
        .route(
            "stats",
            admin.query(|req| async move { Ok(format!("stats for {}", req.ctx.0)) }),
        )
        .route(
            "audit",
            admin.subscription(|req| async move {
                let name = req.ctx.0;
                Ok(event_iterator(move |mut emit| async move {
                    emit.send_value(format!("audit for {name}")).await?;
                    Ok(())
                }))
            }),
        );
    let app = App::new(router, |head: RequestHead| async move {
        let token = head.header("authorization").map(String::from);
        Ok(Ctx { token })
    });
    let as_user = |token: Option<&str>, path: &str| {
        let head = match token {
            Some(token) => RequestHead::new("POST", "/").with_header("authorization", token),
            None => RequestHead::new("POST", "/"),
        };
        block_on(app.call(head, path, None, None))
    };
    assert_eq!(value(as_user(Some("ada"), "whoami")), json!("ada"));
    assert_eq!(
        value(as_user(Some("root"), "stats")),
        json!("stats for root")
    );
    assert_eq!(as_user(Some("ada"), "stats").unwrap_err().status(), 403);
    assert_eq!(as_user(None, "stats").unwrap_err().status(), 401);
    assert_eq!(
        stream(as_user(Some("root"), "audit")).0,
        [json!("audit for root")]
    );
    assert_eq!(as_user(Some("ada"), "audit").unwrap_err().status(), 403);
}

/// A router whose every procedure is wrapped by a middleware that logs before and after.
fn logged_app(log: &Log) -> App<()> {
    let os = procedure::<()>();
    let logged = os.wrap({
        let log = log.clone();
        move |next| {
            let log = log.clone();
            async move {
                let info = next.info().clone();
                log.push(format!("before {} {:?}", info.path(), info.kind()));
                let answer = next.run().await;
                let what = match &answer {
                    Ok(Reply::Value(json)) => format!("value {}", json.get()),
                    Ok(Reply::Stream(_)) => "stream".into(),
                    Err(error) => format!("error {}", error.status()),
                };
                log.push(format!("after {} {what}", info.path()));
                answer
            }
        }
    });
    let (query_log, live_log) = (log.clone(), log.clone());
    Router::new()
        .route(
            "ping",
            logged.query(move |_| {
                query_log.push("handler ping");
                async { Ok("pong") }
            }),
        )
        .route(
            "post.live",
            logged.subscription(move |_| {
                live_log.push("setup post.live");
                let log = live_log.clone();
                async move {
                    Ok(event_iterator(move |mut emit| async move {
                        log.push("event post.live");
                        emit.send_value(1).await?;
                        Ok(())
                    }))
                }
            }),
        )
        .route(
            "refused",
            logged.query(|_| async { Err::<(), _>(RpcError::from_code(ErrorCode::CONFLICT)) }),
        )
        .into()
}

#[test]
fn wrap_runs_before_and_after_the_call_and_sees_its_path_and_kind() {
    let log = Log::default();
    let app = logged_app(&log);
    let unary = [
        "before ping Query",
        "handler ping",
        "after ping value \"pong\"",
    ];
    // For a subscription the call ends once the stream is set up: the wrap sees the
    // `Reply::Stream`, and the events come after it.
    let streamed = [
        "before post.live Subscription",
        "setup post.live",
        "after post.live stream",
        "event post.live",
    ];

    assert_eq!(
        value(block_on(app.call(
            RequestHead::default(),
            "ping",
            None,
            None
        ))),
        json!("pong")
    );
    assert_eq!(log.take(), unary);
    let reply = block_on(app.call(RequestHead::default(), "post.live", None, None));
    assert_eq!(log.take(), streamed[..3]);
    assert_eq!(stream(reply).0, [json!(1)]);
    assert_eq!(log.take(), streamed[3..]);
    assert!(block_on(app.call(RequestHead::default(), "refused", None, None)).is_err());
    assert_eq!(
        log.take(),
        ["before refused Query", "after refused error 409"]
    );

    let head = || RequestHead::new("POST", "/rpc");
    assert_eq!(
        orpc(&app, head(), "/ping", b""),
        (200, r#"{"json":"pong"}"#.into())
    );
    assert_eq!(log.take(), unary);
    let (status, body) = orpc(&app, head(), "/post/live", b"");
    assert_eq!((status, body.matches("event: message").count()), (200, 1));
    assert_eq!(log.take(), streamed);

    let head = || RequestHead::new("GET", "/trpc");
    assert_eq!(
        trpc(&app, head(), "/ping", ""),
        (200, r#"{"result":{"data":"pong"}}"#.into())
    );
    assert_eq!(log.take(), unary);
    let (status, body) = trpc(&app, head(), "/post.live", "");
    assert_eq!((status, body.matches("data: 1\n").count()), (200, 1));
    assert_eq!(log.take(), streamed);
}

#[test]
fn wrap_can_replace_the_answer_of_a_query_and_of_a_subscription() {
    let handled = Count::default();
    let seen = Count::default();
    let os = procedure::<()>();
    let wrapped = os.wrap({
        let seen = seen.clone();
        move |next| {
            let seen = seen.clone();
            async move {
                // Answered here, without running the procedure.
                if next.info().path() == "cached" {
                    let json = serde_json::value::to_raw_value("from cache").unwrap();
                    return Ok(Reply::Value(json));
                }
                match next.run().await? {
                    Reply::Value(json) => {
                        let original: Value = serde_json::from_str(json.get()).unwrap();
                        let json = serde_json::value::to_raw_value(&json!({ "wrapped": original }))
                            .unwrap();
                        Ok(Reply::Value(json))
                    }
                    // A stream of its own that passes the events on, counting them.
                    Reply::Stream(frames) => Ok(Reply::Stream(FrameStream::new(frames.inspect(
                        move |frame| {
                            if frame.is_event() {
                                seen.hit();
                            }
                        },
                    )))),
                }
            }
        }
    });
    let app: App<()> = Router::new()
        .route("ping", wrapped.query(|_| async { Ok("pong") }))
        .route("cached", {
            let handled = handled.clone();
            wrapped.query(move |_| {
                handled.hit();
                async { Ok("from the handler") }
            })
        })
        .route(
            "ticks",
            wrapped.subscription(|_| async {
                Ok(event_iterator(|mut emit| async move {
                    emit.send_value(1).await?;
                    emit.send_value(2).await?;
                    Ok(())
                }))
            }),
        )
        .into();

    let call = |path: &str| block_on(app.call(RequestHead::default(), path, None, None));
    assert_eq!(value(call("ping")), json!({"wrapped": "pong"}));
    assert_eq!(value(call("cached")), json!("from cache"));
    assert_eq!(stream(call("ticks")).0, [json!(1), json!(2)]);
    assert_eq!(seen.get(), 2);

    let post = || RequestHead::new("POST", "/rpc");
    assert_eq!(
        orpc(&app, post(), "/ping", b""),
        (200, r#"{"json":{"wrapped":"pong"}}"#.into())
    );
    assert_eq!(
        orpc(&app, post(), "/cached", b"").1,
        r#"{"json":"from cache"}"#
    );
    assert_eq!(
        orpc(&app, post(), "/ticks", b"").1,
        ": \n\nevent: message\ndata: {\"json\":1}\n\n\
         event: message\ndata: {\"json\":2}\n\nevent: done\ndata: {}\n\n"
    );
    assert_eq!(seen.get(), 4);

    let get = || RequestHead::new("GET", "/trpc");
    assert_eq!(
        trpc(&app, get(), "/ping", "").1,
        r#"{"result":{"data":{"wrapped":"pong"}}}"#
    );
    assert_eq!(
        trpc(&app, get(), "/cached", "").1,
        r#"{"result":{"data":"from cache"}}"#
    );
    assert_eq!(
        trpc(&app, get(), "/ticks", "").1,
        "event: connected\ndata: {}\n\n\ndata: 1\n\n\ndata: 2\n\n\nevent: return\ndata: \n\n\n"
    );
    assert_eq!(seen.get(), 6);
    assert_eq!(handled.get(), 0, "the cached answer ran no handler");
}

/// A value the HTTP layer (or a test) attaches to a request.
#[derive(Debug, PartialEq)]
struct RequestId(u64);

/// What the context builder read from the head.
#[derive(Clone)]
struct Seen(Value);

#[test]
fn the_context_builder_is_async_and_reads_the_whole_request_head() {
    let waited = Count::default();
    let os = procedure::<Seen>();
    let router = Router::new()
        .route("seen", os.query(|req| async move { Ok(req.ctx.0) }))
        .route(
            "seen.live",
            os.subscription(|req| async move {
                let seen = req.ctx.0;
                Ok(event_iterator(move |mut emit| async move {
                    emit.send_value(seen).await?;
                    Ok(())
                }))
            }),
        );
    let app = App::new(router, {
        let waited = waited.clone();
        move |head: RequestHead| {
            let waited = waited.clone();
            async move {
                // A session store would be asked here.
                yield_once().await;
                waited.hit();
                if head.header("user-agent").is_none() {
                    return Err(RpcError::new(ErrorCode::FORBIDDEN, "who are you?"));
                }
                Ok(Seen(json!({
                    "method": head.method,
                    "path": head.path,
                    "query": head.query,
                    "agent": head.header("user-agent"),
                    "peer": head.peer.map(|peer| peer.to_string()),
                    "request": head.extensions.get::<RequestId>().map(|id| id.0),
                })))
            }
        }
    });
    let head = |method: &str, path: &str| {
        let mut head = RequestHead::new(method, path).with_header("User-Agent", "tests/1.0");
        head.query = "trace=1".into();
        head.peer = Some("192.0.2.7:4100".parse().unwrap());
        head.extensions.insert(RequestId(7));
        head
    };
    let seen = |method: &str, path: &str| {
        json!({
            "method": method, "path": path, "query": "trace=1", "agent": "tests/1.0",
            "peer": "192.0.2.7:4100", "request": 7,
        })
    };

    let answer = block_on(app.call(head("POST", "/rpc/seen"), "seen", None, None));
    assert_eq!(value(answer), seen("POST", "/rpc/seen"));
    let answer = block_on(app.call(head("POST", "/rpc/seen/live"), "seen.live", None, None));
    assert_eq!(stream(answer).0, [seen("POST", "/rpc/seen/live")]);

    let (status, body) = orpc(&app, head("POST", "/rpc/seen"), "/seen", b"");
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["json"],
        seen("POST", "/rpc/seen")
    );
    let (_, body) = orpc(&app, head("POST", "/rpc/seen/live"), "/seen/live", b"");
    let expected = json!({ "json": seen("POST", "/rpc/seen/live") }).to_string();
    assert!(body.contains(&format!("data: {expected}\n")), "{body}");

    let (status, body) = trpc(&app, head("GET", "/trpc/seen"), "/seen", "");
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["result"]["data"],
        seen("GET", "/trpc/seen")
    );
    let (_, body) = trpc(&app, head("GET", "/trpc/seen.live"), "/seen.live", "");
    let expected = seen("GET", "/trpc/seen.live").to_string();
    assert!(body.contains(&format!("data: {expected}\n")), "{body}");
    assert_eq!(waited.get(), 6, "every call waited for its context");

    // Its error answers instead of the procedure, with its status, in both protocols and for
    // both kinds.
    let bare = |method: &str| RequestHead::new(method, "/");
    let error = block_on(app.call(bare("POST"), "seen.live", None, None)).unwrap_err();
    assert_eq!((error.status(), error.message()), (403, "who are you?"));
    assert_eq!(orpc(&app, bare("POST"), "/seen/live", b"").0, 403);
    let (status, body) = trpc(&app, bare("GET"), "/seen.live", "");
    assert_eq!(status, 403);
    assert!(
        body.starts_with(r#"{"error":{"message":"who are you?""#),
        "{body}"
    );
}

#[test]
fn a_trpc_batch_of_three_builds_the_context_once_and_runs_the_middleware_per_call() {
    let f = Fixture::new();
    let (status, body) = trpc(
        &f.app,
        head("GET", "/trpc/me,me,public", Some("ada")),
        "/me,me,public",
        "batch=1",
    );
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"[{"result":{"data":"ada"}},{"result":{"data":"ada"}},{"result":{"data":"hello"}}]"#
    );
    assert_eq!(f.built.get(), 1, "one context for the batch");
    assert_eq!(
        f.refined.get(),
        2,
        "the refine ran for each call that has it"
    );

    // Refused by the refine: each call that has it, alone; the rest answer.
    let (status, body) = trpc(
        &f.app,
        head("GET", "/trpc", None),
        "/me,public,me",
        "batch=1",
    );
    assert_eq!(status, 207);
    let answers: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answers[0]["error"]["data"]["httpStatus"], 401);
    assert_eq!(answers[1]["result"]["data"], "hello");
    assert_eq!(answers[2]["error"]["data"]["httpStatus"], 401);
    assert_eq!(f.built.get(), 2);
    assert_eq!(f.handled.get(), 2);
}

#[test]
fn the_call_info_names_the_kind_of_each_procedure() {
    let kinds = Log::default();
    let os = procedure::<()>().wrap({
        let kinds = kinds.clone();
        move |next| {
            kinds.push(format!("{} {:?}", next.info().path(), next.info().kind()));
            next.run()
        }
    });
    let app: App<()> = Router::new()
        .route("q", os.query(|_| async { Ok(1) }))
        .route("m", os.mutation(|_| async { Ok(2) }))
        .route(
            "s",
            os.subscription(|_| async {
                Ok(event_iterator(|_emit: outer_core::Emitter<u8>| async {
                    Ok(())
                }))
            }),
        )
        .into();
    for path in ["q", "m", "s"] {
        block_on(app.call(RequestHead::default(), path, None, None)).unwrap();
    }
    assert_eq!(kinds.take(), ["q Query", "m Mutation", "s Subscription"]);
}

#[test]
fn an_input_check_set_before_a_middleware_still_applies_after_it() {
    let checked = procedure::<Ctx>()
        .input::<Ping>()
        .validate_input(|ping| {
            if ping.n >= 0 {
                Ok(())
            } else {
                Err("must not be negative".into())
            }
        })
        .refine(|ctx| async move { Ok(ctx.token.unwrap_or_default()) })
        .wrap(|next| next.run());
    let app = App::new(
        Router::new().route("n", checked.query(|req| async move { Ok(req.input.n) })),
        |_| async { Ok(Ctx { token: None }) },
    );
    let call =
        |n: i64| block_on(app.call(RequestHead::default(), "n", Some(json!({ "n": n })), None));
    assert_eq!(value(call(1)), json!(1));
    let error = call(-1).unwrap_err();
    assert_eq!(error.status(), 400);
    assert_eq!(
        error.data().unwrap()["issues"][0]["message"],
        "must not be negative"
    );
}
