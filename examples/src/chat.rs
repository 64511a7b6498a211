//! The chat example's router: the same procedures as the oRPC and tRPC reference servers in
//! `shared/reference`, served by Outer.
//!
//! Posts live in a store and go out through a [`MemoryPublisher`]. A post's id is the
//! publisher's sequence number (both are assigned under one lock), so `post.live` resumes after
//! a client's `Last-Event-ID` from the publisher's retention, atomically with the subscribe: no
//! post published during the resume is lost or sent twice. When the client is further behind
//! than the retention, the store fills the gap first, a page at a time, each page read only once
//! the client has taken the one before: a client that resumes from far back and does not read
//! holds one page, not the store.
//!
//! A resume id newer than any post (the client saw posts of an earlier run, before a restart
//! that lost them) is an explicit gap: the stream ends with `PRECONDITION_FAILED` (412), and
//! the client starts over, as with the Redis chat.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use outer_core::publisher::{GapKind, MemoryPublisher, Published, SeqId, SubscribeOptions};
use outer_core::rt::Timer;
use outer_core::{
    event_iterator, mutation, query, subscription, tracked, ErrorCode, Request, Router, RpcError,
};
use outer_http::{Page, ServerConfig};
use serde::{Deserialize, Serialize};

/// The page at `/`: posts arrive over a browser EventSource on `/trpc/post.live`.
pub const PAGE: &str = include_str!("chat.html");

/// The chat server's configuration: the defaults, the page at `/`, and with `test_hooks`, the
/// failure-test hooks at `/__test` (see [`ServerConfig::test_hooks`]).
pub fn server_config(test_hooks: bool) -> ServerConfig {
    ServerConfig {
        pages: vec![Page::new("/", "text/html; charset=utf-8", PAGE)],
        test_hooks: test_hooks.then(|| "/__test".to_string()),
        ..ServerConfig::default()
    }
}

/// A chat post.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    /// Its id: 1, 2, 3... in the order posted.
    pub id: u64,
    /// What was said.
    pub title: String,
}

/// The topic posts are published on.
const POSTS: &str = "created";

/// How many posts the publisher keeps for resume; older ones come from the store.
const RETAINED: usize = 1024;

/// How many posts a catch-up reads from the store at a time.
const CATCH_UP_PAGE: usize = 64;

/// The longest title a post may have, in bytes.
pub const MAX_TITLE: usize = 1000;

/// The chat's state: the posts and the publisher that announces them.
#[derive(Clone, Debug)]
pub struct Chat {
    posts: Arc<Mutex<Vec<Post>>>,
    publisher: MemoryPublisher<Post>,
}

impl Default for Chat {
    fn default() -> Self {
        Self::new()
    }
}

impl Chat {
    /// An empty chat.
    pub fn new() -> Self {
        Self {
            posts: Arc::default(),
            publisher: MemoryPublisher::builder().retain_last(RETAINED).build(),
        }
    }

    /// Stores and publishes a post; its id is the publisher's id for it.
    pub fn create(&self, title: String) -> Post {
        let mut posts = self.posts.lock().unwrap_or_else(PoisonError::into_inner);
        let post = Post {
            id: posts.len() as u64 + 1,
            title,
        };
        posts.push(post.clone());
        // Under the store's lock, so publisher ids and post ids advance together.
        let id = self.publisher.publish(POSTS, post.clone());
        debug_assert_eq!(id.get(), post.id);
        post
    }

    /// At most `limit` posts after `id`, oldest first, from the store.
    pub fn posts_after(&self, id: u64, limit: usize) -> Vec<Post> {
        let posts = self.posts.lock().unwrap_or_else(PoisonError::into_inner);
        // Ids are positions plus one; an id past the end (or past usize) finds nothing.
        let from = usize::try_from(id).unwrap_or(usize::MAX);
        posts.iter().skip(from).take(limit).cloned().collect()
    }

    /// The newest post's id, 0 before the first.
    pub fn newest(&self) -> u64 {
        let posts = self.posts.lock().unwrap_or_else(PoisonError::into_inner);
        posts.last().map_or(0, |post| post.id)
    }

    /// How many clients are subscribed to new posts now.
    pub fn live_subscribers(&self) -> usize {
        self.publisher.subscriber_count(POSTS)
    }
}

/// `n` comes back as the JSON number it was read as: an integer stays an integer (`1` answers
/// `1`, not `1.0`), and one with more digits than a double holds comes back as the nearest
/// double (`123456789012345678901234567890` answers `1.2345678901234568e+29`), as the
/// JavaScript reference servers answer and as the JavaScript clients would read it anyway.
#[derive(Deserialize)]
struct Ping {
    n: serde_json::Number,
}

#[derive(Serialize)]
struct Pong {
    n: serde_json::Number,
}

#[derive(Deserialize)]
struct NewPost {
    title: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CounterInput {
    from: u64,
    to: u64,
    delay_ms: u64,
}

#[derive(Serialize)]
struct Tick {
    n: u64,
}

#[derive(Serialize)]
struct Finished {
    done: bool,
}

/// Parses a resume id this chat gave out: a post id, in decimal (`0`: before the first post).
fn resume_point(last_event_id: Option<&outer_core::EventId>) -> Result<Option<u64>, RpcError> {
    last_event_id
        .map(|id| {
            id.as_str().parse::<u64>().map_err(|_| {
                RpcError::new(
                    ErrorCode::BAD_REQUEST,
                    format!("Last-Event-ID \"{id}\" is not a post id"),
                )
            })
        })
        .transpose()
}

/// The gap a client meets when it resumes after a post this chat never made.
fn never_posted(id: u64, newest: u64) -> RpcError {
    RpcError::new(
        ErrorCode::PRECONDITION_FAILED,
        format!(
            "Post {id} does not exist (the newest is {newest}): the chat restarted without \
             its posts; start over without a Last-Event-ID"
        ),
    )
    .with_data(serde_json::json!({ "gap": "unknown", "newest": newest }))
}

/// The reference router: `ping`, `post.create`, `post.live`, `counter`, `failing`,
/// `failing5xx`. `timer` paces `counter`.
pub fn router(chat: Chat, timer: Arc<dyn Timer>) -> Router<()> {
    let for_create = chat.clone();
    let posts = Router::new()
        .route(
            "create",
            mutation(move |req: Request<(), NewPost>| {
                let chat = for_create.clone();
                async move { Ok::<_, RpcError>(chat.create(req.input.title)) }
            })
            .validate_input(|p: &NewPost| check_title(&p.title)),
        )
        .route(
            "live",
            subscription(move |req: Request<(), Option<serde_json::Value>>| {
                let chat = chat.clone();
                let start = resume_point(req.last_event_id.as_ref());
                event_iterator(move |mut emit| async move {
                    // Without a resume id, only posts from now on, as the reference does.
                    let mut last = start?;
                    loop {
                        let options = match last {
                            Some(id) => SubscribeOptions::new().resume_after(SeqId::new(id)),
                            None => SubscribeOptions::new(),
                        };
                        let mut live = chat.publisher.subscribe(POSTS, options)?;
                        loop {
                            match live.next().await {
                                Some(Ok(post)) => {
                                    last = Some(post.id);
                                    // Sent as published: serialized once for every subscriber.
                                    emit.send(tracked(post.id, post)?).await?;
                                }
                                // An id this chat never gave out: nothing to resume from.
                                Some(Err(gap)) if gap.kind() == GapKind::Unknown => {
                                    let id = last.unwrap_or(0);
                                    return Err(never_posted(id, chat.newest()));
                                }
                                // Further behind than the retention (or too slow a reader):
                                // the store has the rest, after the last post this client had.
                                Some(Err(gap)) => {
                                    last = last.or(Some(gap.last_id().get()));
                                    break;
                                }
                                // The publisher is gone: the server is shutting down.
                                None => return Ok(()),
                            }
                        }
                        // A page at a time, each read once the client took the last: memory
                        // stays bounded by the page, however far behind the client is.
                        loop {
                            let page = chat.posts_after(last.unwrap_or(0), CATCH_UP_PAGE);
                            if page.is_empty() {
                                break;
                            }
                            for post in page {
                                last = Some(post.id);
                                let id = post.id;
                                emit.send(tracked(id, Published::new(SeqId::new(id), post))?)
                                    .await?;
                            }
                        }
                    }
                })
            }),
        );
    procedures(timer).nest("post", posts)
}

/// A post's title as `post.create` checks it: not blank, at most [`MAX_TITLE`] bytes.
pub(crate) fn check_title(title: &str) -> Result<(), outer_core::procedure::Issue> {
    if title.trim().is_empty() {
        Err(outer_core::procedure::Issue::new("a post needs a title").at("title"))
    } else if title.len() > MAX_TITLE {
        Err(
            outer_core::procedure::Issue::new(format!("a title has at most {MAX_TITLE} bytes"))
                .at("title"),
        )
    } else {
        Ok(())
    }
}

/// Every procedure but `post.*`, which depend on where posts live.
pub(crate) fn procedures(timer: Arc<dyn Timer>) -> Router<()> {
    let pace = timer;
    Router::new()
        .route(
            "ping",
            query(
                |req: Request<(), Ping>| async move { Ok::<_, RpcError>(Pong { n: req.input.n }) },
            ),
        )
        .route(
            "counter",
            subscription(move |req: Request<(), CounterInput>| {
                let timer = Arc::clone(&pace);
                let start = resume_point(req.last_event_id.as_ref());
                let CounterInput { from, to, delay_ms } = req.input;
                event_iterator(move |mut emit| async move {
                    let start = match start? {
                        None => from,
                        // After the largest id there is nothing left to send.
                        Some(last) => match last.checked_add(1) {
                            Some(next) => next,
                            None => return Ok(Finished { done: true }),
                        },
                    };
                    for n in start..=to {
                        emit.send(tracked(n, Tick { n })?.with_retry(1000)).await?;
                        // 0 is as fast as the client reads (a timer's 0 ms may wait a tick).
                        if delay_ms > 0 {
                            timer.sleep(Duration::from_millis(delay_ms)).await;
                        }
                    }
                    Ok::<_, RpcError>(Finished { done: true })
                })
            }),
        )
        .route(
            "failing",
            subscription(|_: Request<(), Option<serde_json::Value>>| {
                event_iterator(|mut emit| async move {
                    emit.send_value(Tick { n: 1 }).await?;
                    Err::<(), _>(
                        RpcError::new(ErrorCode::BAD_REQUEST, "nope")
                            .with_data(serde_json::json!({"why": "x"})),
                    )
                })
            }),
        )
        .route(
            "failing5xx",
            subscription(|_: Request<(), Option<serde_json::Value>>| {
                event_iterator(|mut emit| async move {
                    emit.send_value(Tick { n: 1 }).await?;
                    Err::<(), _>(RpcError::new(ErrorCode::INTERNAL_SERVER_ERROR, "boom"))
                })
            }),
        )
}
