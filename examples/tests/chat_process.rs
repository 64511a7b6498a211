//! The chat example as a real process, probed from outside with real sockets the way a careless
//! client or an attacker would, on tokio, on smol and on monoio (a thread per core): a resume id from an earlier run, streams
//! read as fast as they are written, a restart that loses every post, signed-in procedures
//! without and with a name, SIGTERM meanwhile.
//!
//! No timing assertions: deadlines only turn a hang into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::process::Command;

use outer_harness::loopback::{post, send, wait_until, FlatOutReader};

#[path = "support/chat_process.rs"]
mod chat_process;
use chat_process::ChatProcess;

fn start(runtime: &str) -> ChatProcess {
    ChatProcess::start(&["--runtime", runtime])
}

fn ping(chat: &ChatProcess, n: u64) {
    let body = format!(r#"{{"json":{{"n":{n}}}}}"#);
    let mut pong = post(chat.addr, "/rpc/ping", &body);
    assert_eq!(pong.status, 200);
    assert_eq!(pong.read_to_end().0, body);
}

/// `post.live` resuming after `id` over oRPC: the stream as far as its end.
fn orpc_live_after(addr: SocketAddr, id: &str) -> String {
    let request = format!(
        "POST /rpc/post/live HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         last-event-id: {id}\r\ncontent-length: 13\r\n\r\n{{\"json\":null}}"
    );
    let mut response = send(addr, request.as_bytes());
    assert_eq!(response.status, 200);
    response.read_until("event: error").to_owned()
}

fn a_resume_id_from_an_earlier_run_is_a_gap_and_the_chat_stays_up(runtime: &str) {
    let chat = start(runtime);
    chat.create("only");
    // oRPC: the stream ends with a 412 error event.
    let text = orpc_live_after(chat.addr, "5");
    assert!(text.contains("PRECONDITION_FAILED"), "{text}");
    assert!(text.contains("\"status\":412"), "{text}");
    // tRPC (a browser's EventSource): the same gap as a serialized error.
    let mut trpc = send(
        chat.addr,
        b"GET /trpc/post.live HTTP/1.1\r\nhost: test\r\nlast-event-id: 5\r\n\r\n",
    );
    let text = trpc.read_until("event: serialized-error").to_owned();
    let (_, end) = trpc.read_to_end();
    assert!(trpc.text.contains("\"httpStatus\":412"), "{text}");
    assert_eq!(end, outer_harness::loopback::End::Clean);
    // An empty header is no id: live posts, no error.
    let mut live = send(
        chat.addr,
        b"POST /rpc/post/live HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
          last-event-id: \r\ncontent-length: 13\r\n\r\n{\"json\":null}",
    );
    assert_eq!(live.status, 200);
    live.read_until(": \n\n");
    chat.create("seen live");
    let text = live.read_until("seen live").to_owned();
    assert!(text.contains("id: 2"), "{text}");
    assert!(!text.contains("error"), "{text}");
    ping(&chat, 1);
    assert!(chat.terminate(), "a clean exit on SIGTERM");
}

fn fast_streams_leave_the_chat_answering_and_it_stops_on_sigterm(runtime: &str) {
    let chat = start(runtime);
    let body = r#"{"json":{"from":1,"to":1000000000000,"delayMs":0}}"#;
    let request = format!(
        "POST /rpc/counter HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    let readers: Vec<FlatOutReader> = (0..3)
        .map(|_| FlatOutReader::start(chat.addr, request.as_bytes()))
        .collect();
    wait_until("the counters to flow", || {
        readers.iter().map(FlatOutReader::bytes).sum::<usize>() > 1 << 20
    });
    for n in 0..10 {
        ping(&chat, n);
    }
    // SIGTERM with the three streams still running: they end, and the process exits.
    assert!(chat.terminate(), "a clean exit on SIGTERM");
    drop(readers);
}

fn after_a_restart_that_lost_the_posts_a_client_meets_the_gap_and_starts_over(runtime: &str) {
    let first = start(runtime);
    for title in ["a", "b", "c"] {
        first.create(title);
    }
    let mut seen = send(
        first.addr,
        b"POST /rpc/post/live HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
          last-event-id: 0\r\ncontent-length: 13\r\n\r\n{\"json\":null}",
    );
    let text = seen.read_until("id: 3\n").to_owned();
    assert!(
        text.contains("id: 1\n") && text.contains("id: 2\n"),
        "{text}"
    );
    assert!(first.terminate());

    // A new run with none of the posts: resuming after 3 is a gap...
    let second = start(runtime);
    let text = orpc_live_after(second.addr, "3");
    assert!(text.contains("PRECONDITION_FAILED"), "{text}");
    // ...and starting over without an id gets the new run's posts.
    let mut fresh = send(
        second.addr,
        b"POST /rpc/post/live HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
          content-length: 13\r\n\r\n{\"json\":null}",
    );
    fresh.read_until(": \n\n");
    assert_eq!(second.create("new run")["id"], 1);
    let text = fresh.read_until("new run").to_owned();
    assert!(text.contains("id: 1\n"), "{text}");
    assert!(second.terminate());
}

/// `GET /trpc/mentions.live` as a browser's EventSource opens it, with these extra headers.
fn trpc_mentions(addr: SocketAddr, headers: &str) -> outer_harness::loopback::RawResponse {
    let request = format!("GET /trpc/mentions.live HTTP/1.1\r\nhost: test\r\n{headers}\r\n");
    send(addr, request.as_bytes())
}

fn signed_in_procedures_are_401_without_a_name_and_answer_with_one(runtime: &str) {
    let first = start(runtime);
    // oRPC: `me` without a name is a 401, with one the name.
    let refused = post(first.addr, "/rpc/me", "{}");
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["json"]["code"], "UNAUTHORIZED");
    let me = send(
        first.addr,
        b"POST /rpc/me HTTP/1.1\r\nhost: test\r\nauthorization: Bearer ada\r\n\
          content-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
    );
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["json"]["name"], "ada");
    // tRPC's subscription, as an EventSource opens it: no name, a real 401 and no stream (an
    // EventSource gives up on it rather than reconnecting for ever).
    let refused = trpc_mentions(first.addr, "");
    assert_eq!(refused.status, 401);
    assert!(refused.header("content-type").unwrap().contains("json"));
    assert_eq!(refused.json()["error"]["data"]["httpStatus"], 401);
    // With a name: the posts that mention it, with their ids.
    let mut mine = trpc_mentions(first.addr, "authorization: Bearer ada\r\n");
    assert_eq!(mine.status, 200);
    mine.read_until("connected");
    first.create("not for her");
    first.create("hello @ada");
    let text = mine.read_until("hello @ada").to_owned();
    assert!(text.contains("id: 2\n"), "{text}");
    assert!(!text.contains("not for her"), "{text}");
    assert!(first.terminate());

    // A new run with none of the posts: resuming after the mention is a gap.
    let second = start(runtime);
    let mut resumed = trpc_mentions(
        second.addr,
        "authorization: Bearer ada\r\nlast-event-id: 2\r\n",
    );
    assert_eq!(resumed.status, 200);
    resumed.read_until("event: serialized-error");
    resumed.read_to_end();
    assert!(
        resumed.text.contains("\"httpStatus\":412"),
        "{}",
        resumed.text
    );
    assert!(second.terminate());
}

#[test]
fn signed_in_procedures_are_401_without_a_name_and_answer_with_one_on_tokio() {
    signed_in_procedures_are_401_without_a_name_and_answer_with_one("tokio");
}

#[test]
fn signed_in_procedures_are_401_without_a_name_and_answer_with_one_on_smol() {
    signed_in_procedures_are_401_without_a_name_and_answer_with_one("smol");
}

#[test]
fn a_resume_id_from_an_earlier_run_is_a_gap_and_the_chat_stays_up_on_tokio() {
    a_resume_id_from_an_earlier_run_is_a_gap_and_the_chat_stays_up("tokio");
}

#[test]
fn a_resume_id_from_an_earlier_run_is_a_gap_and_the_chat_stays_up_on_smol() {
    a_resume_id_from_an_earlier_run_is_a_gap_and_the_chat_stays_up("smol");
}

#[test]
fn fast_streams_leave_the_chat_answering_and_it_stops_on_sigterm_on_tokio() {
    fast_streams_leave_the_chat_answering_and_it_stops_on_sigterm("tokio");
}

#[test]
fn fast_streams_leave_the_chat_answering_and_it_stops_on_sigterm_on_smol() {
    fast_streams_leave_the_chat_answering_and_it_stops_on_sigterm("smol");
}

#[test]
fn after_a_restart_that_lost_the_posts_a_client_starts_over_on_tokio() {
    after_a_restart_that_lost_the_posts_a_client_meets_the_gap_and_starts_over("tokio");
}

#[test]
fn after_a_restart_that_lost_the_posts_a_client_starts_over_on_smol() {
    after_a_restart_that_lost_the_posts_a_client_meets_the_gap_and_starts_over("smol");
}

#[test]
fn signed_in_procedures_are_401_without_a_name_and_answer_with_one_on_monoio() {
    signed_in_procedures_are_401_without_a_name_and_answer_with_one("monoio");
}

#[test]
fn a_resume_id_from_an_earlier_run_is_a_gap_and_the_chat_stays_up_on_monoio() {
    a_resume_id_from_an_earlier_run_is_a_gap_and_the_chat_stays_up("monoio");
}

#[test]
fn fast_streams_leave_the_chat_answering_and_it_stops_on_sigterm_on_monoio() {
    fast_streams_leave_the_chat_answering_and_it_stops_on_sigterm("monoio");
}

#[test]
fn after_a_restart_that_lost_the_posts_a_client_starts_over_on_monoio() {
    after_a_restart_that_lost_the_posts_a_client_meets_the_gap_and_starts_over("monoio");
}

#[test]
fn help_is_printed_to_stdout_and_exits_0_and_a_bad_flag_exits_2() {
    let help = Command::new(env!("CARGO_BIN_EXE_chat"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(text.starts_with("usage: chat"), "{text}");
    assert!(text.contains("--redis URL"), "{text}");
    let bad = Command::new(env!("CARGO_BIN_EXE_chat"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8(bad.stderr)
        .unwrap()
        .contains("unknown argument --bogus"));
}
