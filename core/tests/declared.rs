//! Declared errors (`ProcedureBuilder::declares`) go out marked `defined`, whether they refuse
//! the call or end its stream; other errors do not.

use futures::executor::block_on;
use futures::StreamExt;
use outer_core::procedure::{Frame, Reply};
use outer_core::protocol::orpc::error_body;
use outer_core::{event_iterator, procedure, App, ErrorCode, RequestHead, Router, RpcError};

fn app() -> App<()> {
    let os = procedure::<()>().declares::<()>(ErrorCode::CONFLICT);
    Router::new()
        .route(
            "claim",
            os.input::<bool>().mutation(|req| async move {
                match req.input {
                    true => Err::<(), _>(RpcError::from_code(ErrorCode::CONFLICT)),
                    false => Err(RpcError::from_code(ErrorCode::FORBIDDEN)),
                }
            }),
        )
        .route(
            "feed",
            os.input::<bool>().subscription(|req| async move {
                let declared = req.input;
                Ok(event_iterator(move |mut emit| async move {
                    emit.send_value(1).await?;
                    Err::<(), _>(RpcError::from_code(match declared {
                        true => ErrorCode::CONFLICT,
                        false => ErrorCode::FORBIDDEN,
                    }))
                }))
            }),
        )
        .into()
}

fn call(path: &str, input: bool) -> Result<Reply, RpcError> {
    let app = app();
    block_on(app.call(
        RequestHead::new("POST", "/rpc"),
        path,
        Some(serde_json::json!(input)),
        None,
    ))
}

fn defined(error: &RpcError) -> bool {
    let body: serde_json::Value = serde_json::from_str(&error_body(error)).unwrap();
    body["json"]["defined"].as_bool().unwrap()
}

#[test]
fn a_declared_error_that_refuses_the_call_is_defined_and_another_is_not() {
    let declared = call("claim", true).unwrap_err();
    assert_eq!((declared.code(), defined(&declared)), ("CONFLICT", true));
    let other = call("claim", false).unwrap_err();
    assert_eq!((other.code(), defined(&other)), ("FORBIDDEN", false));
}

#[test]
fn a_declared_error_that_ends_a_stream_is_defined_and_another_is_not() {
    for (input, code, want) in [(true, "CONFLICT", true), (false, "FORBIDDEN", false)] {
        let Ok(Reply::Stream(mut frames)) = call("feed", input) else {
            panic!("no stream")
        };
        assert!(matches!(block_on(frames.next()), Some(Frame::Event(_))));
        let Some(Frame::Error(error)) = block_on(frames.next()) else {
            panic!("no error frame")
        };
        assert_eq!((error.code(), defined(&error)), (code, want));
    }
}
