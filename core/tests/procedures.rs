//! Procedures and the router, as a protocol sees them: JSON in, JSON frames out, every failure
//! an RpcError with the right code.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::executor::block_on;
use outer_core::procedure::{collect_frames, Call, Frame, Issue};
use outer_core::router::RouteError;
use outer_core::{
    event_iterator, procedure, tracked, App, ErrorCode, Event, EventId, ProcedureKind, Reply,
    RequestHead, Router, RpcError,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Deserialize)]
struct Ping {
    n: i64,
}

#[derive(Serialize, Deserialize, Clone)]
struct Post {
    id: u64,
    title: String,
}

#[derive(Deserialize)]
struct NewPost {
    title: String,
    #[allow(dead_code)]
    tags: Vec<String>,
}

/// Runs a call to its answer (for a subscription: its setup).
fn run(router: &Router<()>, path: &str, call: Call<()>) -> Result<Reply, RpcError> {
    block_on(router.call(path, call))
}

fn unary(answer: Result<Reply, RpcError>) -> Result<Value, RpcError> {
    match answer? {
        Reply::Value(json) => Ok(serde_json::from_str(json.get()).unwrap()),
        Reply::Stream(_) => panic!("expected a unary answer"),
    }
}

fn frames(reply: Reply) -> Vec<Frame> {
    match reply {
        Reply::Stream(frames) => block_on(collect_frames(frames)),
        Reply::Value(_) => panic!("expected a stream"),
    }
}

fn data(frame: &Frame) -> Value {
    match frame {
        Frame::Event(event) => serde_json::from_str(event.data().get()).unwrap(),
        Frame::Shared(event) => serde_json::from_str(event.data().get()).unwrap(),
        Frame::Done(json) => serde_json::from_str(json.get()).unwrap(),
        Frame::Error(err) => panic!("unexpected error {err}"),
    }
}

fn call(input: Value) -> Call<()> {
    Call::new((), Some(input))
}

fn ping_router() -> Router<()> {
    Router::new().route(
        "ping",
        procedure::<()>()
            .input::<Ping>()
            .query(|req| async move { Ok(json!({ "n": req.input.n })) }),
    )
}

#[test]
fn a_query_answers_with_its_output_as_json() {
    let answer = run(&ping_router(), "ping", call(json!({"n": 5})));
    assert_eq!(unary(answer).unwrap(), json!({"n": 5}));
}

#[test]
fn an_unknown_path_is_not_found_with_the_path_in_the_message() {
    let err = run(&ping_router(), "nope", call(json!({}))).unwrap_err();
    assert_eq!((err.code(), err.status()), ("NOT_FOUND", 404));
    assert_eq!(err.message(), "No procedure found on path \"nope\"");
}

#[test]
fn an_input_that_does_not_decode_names_the_failing_field() {
    let router = Router::new().route(
        "post.create",
        procedure::<()>()
            .input::<NewPost>()
            .mutation(|req| async move { Ok(req.input.title) }),
    );
    let err = run(
        &router,
        "post.create",
        call(json!({"title": "t", "tags": ["a", 7]})),
    )
    .unwrap_err();
    assert_eq!((err.code(), err.status()), ("BAD_REQUEST", 400));
    assert_eq!(err.message(), "Input validation failed");
    let issue = &err.data().unwrap()["issues"][0];
    assert_eq!(issue["path"], json!(["tags", 1]));
    assert!(issue["message"].as_str().unwrap().contains("invalid type"));

    let missing = run(&router, "post.create", Call::new((), None)).unwrap_err();
    assert_eq!(missing.status(), 400, "a missing input is an input error");
}

#[test]
fn an_input_validator_refuses_with_400_and_the_issue() {
    let router = Router::new().route(
        "post.create",
        procedure::<()>()
            .input::<NewPost>()
            .validate_input(|p| {
                if p.title.is_empty() {
                    Err(Issue::new("must not be empty").at("title"))
                } else {
                    Ok(())
                }
            })
            .mutation(|req| async move { Ok(req.input.title) }),
    );
    let err = run(
        &router,
        "post.create",
        call(json!({"title": "", "tags": []})),
    )
    .unwrap_err();
    assert_eq!(err.status(), 400);
    assert_eq!(
        err.data().unwrap()["issues"],
        json!([{"message": "must not be empty", "path": ["title"]}])
    );
    let ok = run(
        &router,
        "post.create",
        call(json!({"title": "x", "tags": []})),
    );
    assert_eq!(unary(ok).unwrap(), json!("x"));
}

#[test]
fn a_handler_error_reaches_the_caller_intact() {
    let router = Router::new().route(
        "fail",
        procedure::<()>().query(|_| async {
            Err::<(), _>(
                RpcError::new(ErrorCode::CONFLICT, "taken").with_data(json!({"who": "me"})),
            )
        }),
    );
    let err = unary(run(&router, "fail", Call::new((), None))).unwrap_err();
    assert_eq!(
        (err.code(), err.status(), err.message()),
        ("CONFLICT", 409, "taken")
    );
    assert_eq!(err.data(), Some(&json!({"who": "me"})));
}

#[test]
fn a_handler_with_its_own_error_type_is_a_free_function() {
    struct Missing;
    impl From<Missing> for RpcError {
        fn from(_: Missing) -> Self {
            RpcError::new(ErrorCode::NOT_FOUND, "no such post")
        }
    }
    async fn find(req: outer_core::Request<(), u64>) -> Result<String, Missing> {
        match req.input {
            1 => Ok("first".into()),
            _ => Err(Missing),
        }
    }
    let router = Router::new().route(
        "find",
        procedure::<()>()
            .input::<u64>()
            .error::<Missing>()
            .query(find),
    );
    assert_eq!(
        unary(run(&router, "find", call(json!(1)))).unwrap(),
        json!("first")
    );
    let err = unary(run(&router, "find", call(json!(2)))).unwrap_err();
    assert_eq!((err.status(), err.message()), (404, "no such post"));
}

#[test]
fn a_unary_output_that_fails_validation_is_a_500() {
    let router = Router::new().route(
        "n",
        procedure::<()>()
            .query(|_| async { Ok(-1i32) })
            .validate_output(|n| {
                if *n < 0 {
                    Err("negative".into())
                } else {
                    Ok(())
                }
            }),
    );
    let err = unary(run(&router, "n", Call::new((), None))).unwrap_err();
    assert_eq!((err.code(), err.status()), ("INTERNAL_SERVER_ERROR", 500));
    assert_eq!(err.message(), "Output validation failed");
}

#[test]
fn an_output_serde_cannot_write_is_an_error_not_a_panic() {
    use std::collections::BTreeMap;
    let router = Router::new().route(
        "bad",
        procedure::<()>().query(|_| async {
            // JSON object keys must be strings: this map cannot be serialized.
            let mut map = BTreeMap::new();
            map.insert(vec![1u8], 1);
            Ok(map)
        }),
    );
    let err = unary(run(&router, "bad", Call::new((), None))).unwrap_err();
    assert_eq!(err.status(), 500);
}

fn counter_router(started: Arc<AtomicUsize>, cleaned: Arc<AtomicUsize>) -> Router<()> {
    #[derive(Deserialize)]
    struct Range {
        from: u64,
        to: u64,
    }
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    Router::new().route(
        "counter",
        procedure::<()>()
            .input::<Range>()
            .subscription(move |req| {
                started.fetch_add(1, Ordering::SeqCst);
                let guard = Guard(Arc::clone(&cleaned));
                async move {
                    let start = req
                        .last_event_id
                        .and_then(|id| id.as_str().parse::<u64>().ok())
                        .map_or(req.input.from, |n| n.saturating_add(1));
                    let to = req.input.to;
                    Ok(event_iterator(move |mut emit| async move {
                        let _guard = guard;
                        for n in start..=to {
                            emit.send(tracked(n, json!({ "n": n }))?.with_retry(1000))
                                .await?;
                        }
                        Ok(json!({"done": true}))
                    }))
                }
            })
            .validate_output(|v| {
                if v["n"] == 13 {
                    Err(Issue::new("unlucky").at("n"))
                } else {
                    Ok(())
                }
            }),
    )
}

#[test]
fn a_subscription_streams_events_with_meta_then_its_return_value() {
    let router = counter_router(Default::default(), Default::default());
    assert_eq!(
        router.get("counter").unwrap().kind(),
        ProcedureKind::Subscription
    );
    let all = frames(run(&router, "counter", call(json!({"from": 1, "to": 3}))).unwrap());
    assert_eq!(all.len(), 4);
    for (i, frame) in all[..3].iter().enumerate() {
        let Frame::Event(event) = frame else {
            panic!("expected an event")
        };
        let n = i as u64 + 1;
        assert_eq!(event.id().unwrap().as_str(), n.to_string());
        assert_eq!(event.meta().retry(), Some(1000));
        assert_eq!(data(frame), json!({ "n": n }));
    }
    assert!(matches!(all[3], Frame::Done(_)));
    assert_eq!(data(&all[3]), json!({"done": true}));
}

#[test]
fn a_subscription_resumes_after_the_last_event_id() {
    let router = counter_router(Default::default(), Default::default());
    let resumed =
        call(json!({"from": 1, "to": 4})).with_last_event_id(Some(EventId::new("2").unwrap()));
    let all = frames(run(&router, "counter", resumed).unwrap());
    let ids: Vec<_> = all
        .iter()
        .filter_map(|f| match f {
            Frame::Event(e) => Some(e.id().unwrap().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["3", "4"]);
}

#[test]
fn a_yielded_value_that_fails_validation_ends_the_stream_with_an_error_and_cleans_up() {
    let cleaned = Arc::new(AtomicUsize::new(0));
    let router = counter_router(Default::default(), Arc::clone(&cleaned));
    let Reply::Stream(mut stream) =
        run(&router, "counter", call(json!({"from": 12, "to": 20}))).unwrap()
    else {
        panic!()
    };
    use futures::StreamExt;
    let first = block_on(stream.next()).unwrap();
    assert_eq!(data(&first), json!({"n": 12}));
    let Frame::Error(err) = block_on(stream.next()).unwrap() else {
        panic!("expected the validation error")
    };
    assert_eq!(
        (err.status(), err.message()),
        (500, "Output validation failed")
    );
    assert_eq!(err.data().unwrap()["issues"][0]["path"], json!(["n"]));
    assert_eq!(
        cleaned.load(Ordering::SeqCst),
        1,
        "the handler is dropped as soon as its stream fails, before the stream is"
    );
    assert!(block_on(stream.next()).is_none());
}

#[test]
fn dropping_a_frame_stream_cancels_the_handler() {
    let cleaned = Arc::new(AtomicUsize::new(0));
    let router = counter_router(Default::default(), Arc::clone(&cleaned));
    let reply = run(&router, "counter", call(json!({"from": 1, "to": 1000}))).unwrap();
    let Reply::Stream(mut stream) = reply else {
        panic!()
    };
    use futures::StreamExt;
    block_on(stream.next());
    assert_eq!(cleaned.load(Ordering::SeqCst), 0);
    drop(stream);
    assert_eq!(cleaned.load(Ordering::SeqCst), 1);
}

#[test]
fn a_subscription_input_error_comes_back_before_the_handler_runs() {
    let started = Arc::new(AtomicUsize::new(0));
    let router = counter_router(Arc::clone(&started), Default::default());
    let err = run(&router, "counter", call(json!({"from": "one", "to": 3}))).unwrap_err();
    assert_eq!(err.status(), 400);
    assert_eq!(err.data().unwrap()["issues"][0]["path"], json!(["from"]));
    assert_eq!(started.load(Ordering::SeqCst), 0);
}

#[test]
fn a_failing_subscription_setup_refuses_the_call_and_opens_no_stream() {
    let router = Router::new().route(
        "room",
        procedure::<()>()
            .input::<String>()
            .subscription(|req| async move {
                if req.input != "lobby" {
                    return Err(RpcError::new(ErrorCode::NOT_FOUND, "no such room"));
                }
                Ok(event_iterator(|mut emit| async move {
                    emit.send_value(1).await?;
                    Ok(())
                }))
            }),
    );
    let err = run(&router, "room", call(json!("attic"))).unwrap_err();
    assert_eq!((err.status(), err.message()), (404, "no such room"));
    let all = frames(run(&router, "room", call(json!("lobby"))).unwrap());
    assert_eq!(data(&all[0]), json!(1));
    assert!(matches!(all[1], Frame::Done(_)));
}

#[test]
fn a_handler_error_mid_stream_follows_the_events_before_it() {
    let router = Router::new().route(
        "failing",
        procedure::<()>().subscription(|_| async {
            Ok(event_iterator(|mut emit| async move {
                emit.send_value(json!({"n": 1})).await?;
                Err::<(), _>(
                    RpcError::new(ErrorCode::BAD_REQUEST, "nope").with_data(json!({"why": "x"})),
                )
            }))
        }),
    );
    let all = frames(run(&router, "failing", Call::new((), None)).unwrap());
    assert_eq!(data(&all[0]), json!({"n": 1}));
    let Frame::Error(err) = &all[1] else { panic!() };
    assert_eq!((err.code(), err.message()), ("BAD_REQUEST", "nope"));
    assert_eq!(err.data(), Some(&json!({"why": "x"})));
    assert_eq!(all.len(), 2);
}

#[test]
fn nesting_and_merging_build_dotted_paths() {
    let os = procedure::<()>();
    let posts = Router::new()
        .route(
            "create",
            os.input::<Post>()
                .mutation(|req| async move { Ok(req.input) }),
        )
        .route(
            "live",
            os.subscription(|_| async {
                Ok(event_iterator(|_emit: outer_core::Emitter<Post>| async {
                    Ok(())
                }))
            }),
        );
    let router = ping_router()
        .nest("post", posts)
        .merge(Router::new().nest("admin", ping_router()));
    assert_eq!(
        router.paths().collect::<Vec<_>>(),
        ["admin.ping", "ping", "post.create", "post.live"]
    );
    assert_eq!(
        router.get("post.create").unwrap().kind(),
        ProcedureKind::Mutation
    );
    let answer = run(
        &router,
        "post.create",
        call(json!({"id": 1, "title": "hi"})),
    );
    assert_eq!(unary(answer).unwrap(), json!({"id": 1, "title": "hi"}));
}

#[test]
fn two_procedures_at_one_path_or_a_bad_path_are_refused() {
    let err = ping_router().try_merge(ping_router()).unwrap_err();
    assert_eq!(err, RouteError::Taken("ping".into()));
    for bad in ["", "a..b", "a/b", ".a", "sp ace"] {
        let err = Router::<()>::new()
            .try_route(bad, procedure::<()>().query(|_| async { Ok(()) }))
            .unwrap_err();
        assert_eq!(err, RouteError::InvalidPath(bad.into()), "{bad:?}");
    }
}

#[test]
#[should_panic(expected = "two procedures at path \"ping\"")]
fn route_panics_on_a_taken_path_with_a_clear_message() {
    let _ = ping_router().merge(ping_router());
}

#[derive(Clone)]
struct User {
    name: String,
}

fn auth_app() -> App<User> {
    let router = Router::new().route(
        "me",
        procedure::<User>().query(|req| async move { Ok(req.ctx.name) }),
    );
    App::new(router, |head: RequestHead| async move {
        match head
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            Some(name) => Ok(User { name: name.into() }),
            None => Err(RpcError::new(ErrorCode::UNAUTHORIZED, "sign in first")),
        }
    })
}

#[test]
fn the_context_is_built_from_request_headers_for_each_call() {
    let app = auth_app();
    let head = RequestHead::new("POST", "/rpc/me").with_header("Authorization", "Bearer ada");
    let answer = block_on(app.call(head, "me", None, None));
    assert_eq!(unary(answer).unwrap(), json!("ada"));
}

#[test]
fn a_context_error_answers_instead_of_the_handler() {
    let err = block_on(auth_app().call(RequestHead::default(), "me", None, None)).unwrap_err();
    assert_eq!((err.code(), err.status()), ("UNAUTHORIZED", 401));
    assert_eq!(err.message(), "sign in first");
    let unknown =
        block_on(auth_app().call(RequestHead::default(), "nope", None, None)).unwrap_err();
    assert_eq!(
        unknown.status(),
        404,
        "an unknown path is 404 even before auth"
    );
}

#[test]
fn events_with_an_invalid_id_are_refused_by_the_handler_not_sent() {
    let router = Router::new().route(
        "bad",
        procedure::<()>().subscription(|_| async {
            Ok(event_iterator(|mut emit| async move {
                emit.send(Event::new(1u8).with_id("a\nb")?).await?;
                Ok(())
            }))
        }),
    );
    let all = frames(run(&router, "bad", Call::new((), None)).unwrap());
    let [Frame::Error(err)] = all.as_slice() else {
        panic!("expected only an error")
    };
    assert_eq!(err.status(), 500);
    assert_eq!(err.message(), "an event id must not contain LF");
}
