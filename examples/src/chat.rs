//! The chat example: the procedures of the oRPC and tRPC reference servers in
//! `shared/reference` (`ping`, `post.create`, `post.live`, `counter`, `failing`,
//! `failing5xx`), and a signed-in part (`me`, `mentions.live`), in one router written once over
//! any [`Publisher`]: in memory (the default) or on Redis (`chat --redis URL`).
//!
//! A post's id is the id its publisher gave it: 1, 2, 3... in memory (a JSON number), the
//! stream id on Redis (a string, `"1732000000000-0"`). `post.live` sends each post with that id
//! as its SSE id, so a client that reconnects resumes after the `Last-Event-ID` it sends back,
//! from the publisher's retention, atomically with the subscribe. A client further behind than
//! that is caught up from the chat's archive a page at a time, each page read once the client
//! has taken the one before: the memory chat archives every post; on Redis the stream is the
//! record, and a client behind it meets the gap.
//!
//! A gap nothing can fill ends the stream with 412 `PRECONDITION_FAILED`: so does a resume id
//! the chat never gave out (`data.gap` is `"unknown"`: the client saw an earlier run, before a
//! restart that lost its posts). The client starts over without an id.

use std::future::{ready, Future};
use std::sync::Arc;
use std::time::Duration;

use futures::lock::Mutex;
use futures::TryStreamExt;
use outer_core::procedure::Issue;
use outer_core::publisher::{
    backfilled, with_ids, Backfilled, GapData, MemoryPublisher, Publisher, SeqId, SubscribeOptions,
};
use outer_core::rt::Timer;
use outer_core::{
    event_iterator, procedure, tracked, App, ErrorCode, EventId, RequestHead, Router, RpcError,
};
use outer_http::{
    OuterService, Pages, PagesService, ServerConfig, Stack, TestHooks, TestHooksService,
};
use outer_redis::RedisPublisher;
use serde::{Deserialize, Serialize};

/// The page at `/`: posts arrive over a browser EventSource on `/trpc/post.live`, or with
/// `/?transport=ws` over tRPC's WebSocket at `/trpc` (see `typescript/web/chat.ts`).
pub const PAGE: &str = include_str!("chat.html");

/// The page's code at `/chat.js`: `typescript/web/chat.ts`, written against the chat's generated
/// types, bundled by esbuild (`typescript/check.sh` checks this bundle is that file's).
pub const SCRIPT: &str = include_str!("chat.js");

/// The chat server's configuration: the defaults.
pub fn server_config() -> ServerConfig {
    ServerConfig::default()
}

/// The page at `/`, its script at `/chat.js`, and once a Prometheus recorder is installed
/// ([`crate::prometheus::Prometheus::install`]), the metrics at `/metrics`.
pub fn pages() -> Pages {
    let pages = Pages::new()
        .page("/", "text/html; charset=utf-8", PAGE)
        .page("/chat.js", "text/javascript; charset=utf-8", SCRIPT);
    match crate::prometheus::installed() {
        Some(prometheus) => prometheus.page(pages),
        None => pages,
    }
}

/// The chat's service with its pages, and with `test_hooks`, the failure-test hooks at
/// `/__test` (see [`TestHooks`]).
pub type ChatService = tower::util::Either<
    TestHooksService<ChatCtx, PagesService<OuterService<ChatCtx>>>,
    PagesService<OuterService<ChatCtx>>,
>;

/// What the chat server serves: `outer` with the chat's [`pages`], and with `test_hooks` the
/// failure-test hooks at `/__test`; never turn those on where strangers can reach them.
pub fn stack(outer: OuterService<ChatCtx>, test_hooks: bool) -> Stack<ChatCtx, ChatService> {
    let hooks = test_hooks.then(|| TestHooks::new("/__test", &outer));
    outer.layer(pages()).layer(tower::util::option_layer(hooks))
}

/// The topic posts are published on (on Redis, the stream `outer:created`).
const POSTS: &str = "created";

/// How many posts the memory publisher keeps for resume; older ones come from the archive.
const RETAINED: usize = 1024;

/// How many posts a catch-up reads from the archive at a time.
pub const CATCH_UP_PAGE: usize = 64;

/// The longest title a post may have, in bytes.
pub const MAX_TITLE: usize = 1000;

/// The longest name a caller may sign in with, in bytes.
pub const MAX_NAME: usize = 64;

/// What the publisher carries for a post: its title. The id is the one the publisher gives it.
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostText {
    /// What was said.
    pub title: String,
}

/// A chat post as `post.create` answers it and `post.live` sends it.
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post<Id = SeqId> {
    /// The id its publisher gave it: 1, 2, 3... in memory, a stream id on Redis. Ids grow in
    /// the order posted.
    pub id: Id,
    /// What was said.
    pub title: String,
}

/// The chat's state: the publisher posts go out through and, where the publisher forgets
/// them, the archive that catches up a client further behind than it keeps.
pub struct Chat<P: Publisher<PostText> = MemoryPublisher<PostText>> {
    publisher: P,
    archive: Archive<P::Id>,
}

/// The chat on Redis: every chat server on one Redis shares its posts.
pub type RedisChat = Chat<RedisPublisher<PostText>>;

impl Chat {
    /// An empty chat in memory: a publisher that keeps the last 1024 posts for resume, and an
    /// archive of every post for clients further behind.
    pub fn new() -> Self {
        Self::with_archive(MemoryPublisher::builder().retain_last(RETAINED).build())
    }

    /// [`create`](Self::create), for code that does not run on an executor (tests): a memory
    /// publish never waits, so this waits at most while another create publishes.
    pub fn create_now(&self, title: impl Into<String>) -> Post {
        // Only a memory subscribe can fail (a malformed id), never a publish.
        futures::executor::block_on(self.create(title.into()))
            .expect("a memory publish never fails")
    }

    /// How many clients are subscribed to new posts now.
    pub fn live_subscribers(&self) -> usize {
        self.publisher.subscriber_count(POSTS)
    }
}

impl Default for Chat {
    fn default() -> Self {
        Self::new()
    }
}

impl RedisChat {
    /// A chat on the Redis at `url`, running its background readers on `runtime`. Connects
    /// lazily; see [`RedisChat::check`]. The stream is the record: the chat archives nothing,
    /// and Redis keeps the last 10,000 posts.
    ///
    /// ```no_run
    /// use outer_examples::chat::RedisChat;
    /// # async fn run() -> Result<(), outer_core::RpcError> {
    /// let chat = RedisChat::connect("redis://127.0.0.1:6379", outer_tokio::TokioRuntime)?;
    /// chat.check().await?;
    /// let post = chat.create("hello".into()).await?;
    /// assert!(post.id.to_string().contains('-'));
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect(
        url: &str,
        runtime: impl outer_core::rt::Runtime,
    ) -> Result<Self, outer_redis::Error> {
        Ok(Self::without_archive(
            RedisPublisher::builder(url).build(runtime)?,
        ))
    }

    /// Fails if Redis does not answer.
    pub async fn check(&self) -> Result<(), outer_redis::Error> {
        self.publisher.ping().await
    }

    /// How many clients of this server are subscribed to new posts now.
    pub fn live_subscribers(&self) -> usize {
        self.publisher.subscriber_count(POSTS)
    }
}

impl<P: Publisher<PostText> + Clone + 'static> Chat<P> {
    /// A chat on `publisher` that also archives every post in this process, so that a client
    /// further behind than the publisher keeps is caught up from the archive.
    pub fn with_archive(publisher: P) -> Self {
        Self {
            publisher,
            archive: Archive(Some(Arc::default())),
        }
    }

    /// A chat on `publisher` alone: what it retains is all there is, and a client further
    /// behind meets the gap (412).
    pub fn without_archive(publisher: P) -> Self {
        Self {
            publisher,
            archive: Archive(None),
        }
    }

    /// The publisher posts go out through.
    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    /// Publishes a post (and archives it, if the chat archives); its id is the publisher's.
    pub fn create(
        &self,
        title: String,
    ) -> impl Future<Output = Result<Post<P::Id>, RpcError>> + Send + 'static {
        let (publisher, archive) = (self.publisher.clone(), self.archive.clone());
        async move {
            let text = PostText { title };
            let id = match archive.0 {
                None => publisher.publish(POSTS, text.clone()).await?,
                Some(posts) => {
                    // Publish and archive as one step: a later post is never archived before
                    // an earlier one, so a page of the archive never skips a post.
                    let mut posts = posts.lock().await;
                    let id = publisher.publish(POSTS, text.clone()).await?;
                    posts.push((id.clone(), text.clone()));
                    id
                }
            };
            Ok(Post {
                id,
                title: text.title,
            })
        }
    }

    /// The archive's next page after post `after`: at most [`CATCH_UP_PAGE`] posts, oldest
    /// first. Empty past the newest post, and always without an archive.
    pub fn archive_page(
        &self,
        after: P::Id,
    ) -> impl Future<Output = Result<Vec<(P::Id, PostText)>, RpcError>> + Send + 'static {
        let archive = self.archive.clone();
        async move {
            let Some(posts) = archive.0 else {
                return Ok(Vec::new());
            };
            let posts = posts.lock().await;
            // In id order: the page starts at the first post after `after`.
            let from = posts.partition_point(|(id, _)| *id <= after);
            Ok(posts[from..].iter().take(CATCH_UP_PAGE).cloned().collect())
        }
    }

    /// Every post after `last_event_id` (without one: from now on), then each new one: from
    /// the publisher, and where it no longer has them, from the archive a page at a time.
    pub fn live(
        &self,
        last_event_id: Option<EventId>,
    ) -> impl Future<Output = Result<Backfilled<PostText, P::Id>, RpcError>> + Send + 'static {
        let options = SubscribeOptions::new().last_event_id(last_event_id);
        let chat = self.clone();
        backfilled(self.publisher.clone(), POSTS, options, move |after| {
            chat.archive_page(after)
        })
    }
}

impl<P: Publisher<PostText> + Clone> Clone for Chat<P> {
    fn clone(&self) -> Self {
        Self {
            publisher: self.publisher.clone(),
            archive: self.archive.clone(),
        }
    }
}

impl<P: Publisher<PostText> + std::fmt::Debug> std::fmt::Debug for Chat<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat")
            .field("publisher", &self.publisher)
            .field("archives", &self.archive.0.is_some())
            .finish()
    }
}

/// Every post with its id, in id order; `None` where the publisher is the only record.
struct Archive<Id>(Option<Arc<Posts<Id>>>);

/// An async lock: [`Chat::create`] holds it across its publish, which on Redis waits.
type Posts<Id> = Mutex<Vec<(Id, PostText)>>;

impl<Id> Clone for Archive<Id> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// Who is calling: the name an `authorization: Bearer <name>` header signs in with, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatCtx {
    /// The caller's name; `None` without an `authorization` header.
    pub user: Option<String>,
}

/// A signed-in caller: the context of the procedures that need one, and what `me` answers.
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    /// The name it signed in with.
    pub name: String,
}

/// Builds each request's context from its head, once per HTTP request (once per socket over
/// WebSocket): the name of an `authorization: Bearer <name>` header (1 to [`MAX_NAME`] bytes,
/// no control characters). A browser cannot set headers on a WebSocket, so there the same value
/// may come as tRPC's connection parameter `authorization`
/// (`createWSClient({ connectionParams: { authorization: "Bearer ann" } })`); the header wins
/// when both are sent. Without either the caller is anonymous; a value that is not such a name
/// answers 401 `UNAUTHORIZED`, whatever the procedure (a bad credential is never taken for
/// none).
pub async fn context(head: RequestHead) -> Result<ChatCtx, RpcError> {
    let credential = head
        .header("authorization")
        .or_else(|| head.connection_param("authorization"));
    let user = credential.map(bearer_name).transpose()?;
    Ok(ChatCtx { user })
}

/// The name in an `authorization` header's value: `Bearer <name>`, the scheme in any case.
fn bearer_name(value: &str) -> Result<String, RpcError> {
    let refuse = |why: &str| {
        RpcError::new(
            ErrorCode::UNAUTHORIZED,
            format!("{why}: send `authorization: Bearer <your name>`, or no authorization"),
        )
    };
    let name = match value.split_once(' ') {
        Some((scheme, name)) if scheme.eq_ignore_ascii_case("bearer") => name.trim(),
        _ => return Err(refuse("the authorization header is not a bearer name")),
    };
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(refuse(&format!("a name has 1 to {MAX_NAME} bytes")));
    }
    if name.chars().any(char::is_control) {
        return Err(refuse("a name has no control characters"));
    }
    Ok(name.to_owned())
}

/// The chat served: [`router`] with [`context`], which reads who is calling.
pub fn app<P: Publisher<PostText> + Clone + 'static>(
    chat: Chat<P>,
    timer: Arc<dyn Timer>,
) -> App<ChatCtx> {
    App::new(router(chat, timer), context)
}

/// `n` comes back as the JSON number it was read as: an integer stays an integer (`1` answers
/// `1`, not `1.0`), and one with more digits than a double holds comes back as the nearest
/// double (`123456789012345678901234567890` answers `1.2345678901234568e+29`), as the
/// JavaScript reference servers answer and as the JavaScript clients would read it anyway.
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[derive(Deserialize)]
struct Ping {
    n: serde_json::Number,
}

#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[derive(Serialize)]
struct Pong {
    n: serde_json::Number,
}

#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[derive(Deserialize)]
struct NewPost {
    title: String,
}

#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CounterInput {
    from: u64,
    to: u64,
    delay_ms: u64,
}

#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[derive(Serialize)]
struct Tick {
    n: u64,
}

#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[derive(Serialize)]
struct Finished {
    done: bool,
}

/// The chat's procedures, over any publisher: the reference's `ping`, `post.create`,
/// `post.live`, `counter`, `failing` and `failing5xx`, and for a signed-in caller `me` and
/// `mentions.live`. `timer` paces `counter`.
///
/// Generic over the publisher, not `dyn Publisher`: the trait has async methods and associated
/// types (its id, its subscription), so it is not dyn-compatible; and a generic router costs
/// no boxing per event. It is written once, and erased into a [`Router`] as any other.
pub fn router<P>(chat: Chat<P>, timer: Arc<dyn Timer>) -> Router<ChatCtx>
where
    P: Publisher<PostText> + Clone + 'static,
{
    let os = procedure::<ChatCtx>();
    // Refuses an anonymous caller before anything runs: a subscription opens no stream.
    // A feed that meets a gap it cannot fill (a resume id from before a restart) ends with a
    // 412 whose data says why: declared, so oRPC clients get it typed and narrow on it.
    let feed = os.declares::<GapData>(ErrorCode::PRECONDITION_FAILED);
    let authed = os
        .declares::<()>(ErrorCode::UNAUTHORIZED)
        .refine(|ctx| async move {
            let unauthorized = || {
                RpcError::new(
                    ErrorCode::UNAUTHORIZED,
                    "sign in: send `authorization: Bearer <your name>`",
                )
            };
            ctx.user.map(|name| User { name }).ok_or_else(unauthorized)
        });
    let (posts, live, mentions) = (chat.clone(), chat.clone(), chat);

    Router::new()
        .route(
            "ping",
            os.input::<Ping>()
                .query(|req| async move { Ok(Pong { n: req.input.n }) }),
        )
        .nest(
            "post",
            Router::new()
                .route(
                    "create",
                    os.input::<NewPost>()
                        .validate_input(|post| check_title(&post.title))
                        .mutation(move |req| posts.create(req.input.title)),
                )
                .route(
                    "live",
                    feed.subscription(move |req| {
                        let posts = live.live(req.last_event_id);
                        // Each post as `{"id", "title"}`, its JSON made once for all readers.
                        async move { Ok(with_ids(posts.await?)) }
                    }),
                ),
        )
        .route(
            "counter",
            os.input::<CounterInput>().subscription(move |req| {
                let timer = Arc::clone(&timer);
                let CounterInput { from, to, delay_ms } = req.input;
                // Resume after the id the client saw last; after u64::MAX comes nothing.
                let start = resume_point(req.last_event_id.as_ref())
                    .map(|last| last.map_or(Some(from), |last| last.checked_add(1)));
                async move {
                    let start = start?;
                    Ok(event_iterator(move |mut emit| async move {
                        for n in start.into_iter().flat_map(|start| start..=to) {
                            emit.send(tracked(n, Tick { n })?.with_retry(1000)).await?;
                            // 0 is as fast as the client reads (a timer's 0 ms may wait a tick).
                            if delay_ms > 0 {
                                timer.sleep(Duration::from_millis(delay_ms)).await;
                            }
                        }
                        Ok(Finished { done: true })
                    })
                    .tracked())
                }
            }),
        )
        .route(
            "failing",
            os.subscription(|_| async {
                Ok(event_iterator(|mut emit| async move {
                    emit.send_value(Tick { n: 1 }).await?;
                    let why = serde_json::json!({"why": "x"});
                    Err::<(), _>(RpcError::new(ErrorCode::BAD_REQUEST, "nope").with_data(why))
                }))
            }),
        )
        .route(
            "failing5xx",
            os.subscription(|_| async {
                Ok(event_iterator(|mut emit| async move {
                    emit.send_value(Tick { n: 1 }).await?;
                    Err::<(), _>(RpcError::new(ErrorCode::INTERNAL_SERVER_ERROR, "boom"))
                }))
            }),
        )
        .route("me", authed.query(|req| async move { Ok(req.ctx) }))
        .nest(
            "mentions",
            Router::new().route(
                "live",
                authed
                    .declares::<GapData>(ErrorCode::PRECONDITION_FAILED)
                    .subscription(move |req| {
                        // The posts that name the caller, live and resumable as `post.live`'s.
                        let tag = format!("@{}", req.ctx.name);
                        let posts = mentions.live(req.last_event_id);
                        async move {
                            let named = posts
                                .await?
                                .try_filter(move |post| ready(post.title.contains(&tag)));
                            Ok(with_ids(named))
                        }
                    }),
            ),
        )
}

/// A post's title as `post.create` checks it: not blank, at most [`MAX_TITLE`] bytes.
fn check_title(title: &str) -> Result<(), Issue> {
    if title.trim().is_empty() {
        Err(Issue::new("a post needs a title").at("title"))
    } else if title.len() > MAX_TITLE {
        Err(Issue::new(format!("a title has at most {MAX_TITLE} bytes")).at("title"))
    } else {
        Ok(())
    }
}

/// The counter value a `counter` client resumes after: a decimal number, as `counter` sent it.
fn resume_point(last_event_id: Option<&EventId>) -> Result<Option<u64>, RpcError> {
    last_event_id
        .map(|id| {
            id.as_str().parse::<u64>().map_err(|_| {
                RpcError::new(
                    ErrorCode::BAD_REQUEST,
                    format!("Last-Event-ID \"{id}\" is not a counter value"),
                )
            })
        })
        .transpose()
}

/// The chat's TypeScript, for its clients: the oRPC contract module (`orpc.ts`, exporting
/// `contract`) and the tRPC module (`trpc.ts`, exporting `type AppRouter`), from the router's
/// own types. Post ids are the memory publisher's (`number`); on Redis they are strings.
#[cfg(feature = "typescript")]
pub fn typescript() -> Result<(String, String), outer_core::typescript::TypeScriptError> {
    // The router only: its types do not depend on the state, and no timer is ever used.
    #[derive(Debug)]
    struct NoTimer;
    impl Timer for NoTimer {
        fn sleep(&self, _: Duration) -> outer_core::rt::Sleep {
            Box::pin(std::future::pending())
        }
        fn now(&self) -> Duration {
            Duration::ZERO
        }
    }
    let router = router(Chat::new(), Arc::new(NoTimer));
    Ok((
        outer_core::typescript::orpc_contract(&router)?,
        outer_core::typescript::trpc_router(&router)?,
    ))
}
