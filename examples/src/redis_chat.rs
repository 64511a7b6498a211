//! The chat example on Redis (`chat --redis URL`): the same procedures as [`chat`](crate::chat),
//! but posts go through an [`outer_redis::RedisPublisher`], so any number of chat servers on one
//! Redis share them and a client resumes on whichever it reaches.
//!
//! There is no store beside the publisher: the topic's stream is the record, kept to its
//! retention (10,000 posts by default). A post's id is its stream id, a string:
//! `post.create` answers `{"id":"1732000000000-0","title":"hello"}`, and `post.live` sends that
//! same object with SSE `id: 1732000000000-0`, which the client sends back as `Last-Event-ID`.
//! A resume point older than the retention ends the stream with `PRECONDITION_FAILED` (412):
//! the client refetches; Redis being down answers `SERVICE_UNAVAILABLE` (503), which clients
//! retry.

use std::sync::Arc;

use futures::StreamExt;
use outer_core::publisher::SubscribeOptions;
use outer_core::rt::Timer;
use outer_core::{event_iterator, mutation, subscription, tracked, Request, Router, RpcError};
use outer_redis::{RecvError, RedisPublisher, Runtime};
use serde::{Deserialize, Serialize};

use crate::chat::{check_title, procedures};

/// The topic posts are published on (the stream `outer:created`).
const POSTS: &str = "created";

/// What the stream stores for a post: its title (the id is the entry's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostText {
    /// What was said.
    pub title: String,
}

/// A chat post as `post.create` and `post.live` send it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedisPost {
    /// Its stream id, e.g. `"1732000000000-0"`: ids grow in the order posted, on every server.
    pub id: String,
    /// What was said.
    pub title: String,
}

/// The chat's state: the publisher, shared with every other server on the same Redis.
#[derive(Clone, Debug)]
pub struct RedisChat {
    publisher: RedisPublisher<PostText>,
}

impl RedisChat {
    /// A chat on the Redis at `url`, running its background readers on `runtime`. Connects
    /// lazily; see [`RedisChat::check`].
    ///
    /// ```no_run
    /// use outer_examples::redis_chat::RedisChat;
    /// use outer_redis::Runtime;
    /// # async fn run() -> Result<(), outer_redis::Error> {
    /// let runtime = Runtime::new(|task| { tokio::spawn(task); }, outer_tokio::TokioTimer);
    /// let chat = RedisChat::connect("redis://127.0.0.1:6379", runtime)?;
    /// chat.check().await?;
    /// let post = chat.create("hello".into()).await?;
    /// assert!(post.id.contains('-'));
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect(url: &str, runtime: Runtime) -> Result<Self, outer_redis::Error> {
        Ok(Self {
            publisher: RedisPublisher::builder(url).build(runtime)?,
        })
    }

    /// Fails if Redis does not answer.
    pub async fn check(&self) -> Result<(), outer_redis::Error> {
        self.publisher.ping().await
    }

    /// Publishes a post; its id is the stream id Redis gave it.
    pub async fn create(&self, title: String) -> Result<RedisPost, outer_redis::Error> {
        let text = PostText { title };
        let title = text.title.clone();
        let id = self.publisher.publish(POSTS, text).await?;
        Ok(RedisPost {
            id: id.to_string(),
            title,
        })
    }

    /// How many clients of this server are subscribed to new posts now.
    pub fn live_subscribers(&self) -> usize {
        self.publisher.subscriber_count(POSTS)
    }

    /// The publisher.
    pub fn publisher(&self) -> &RedisPublisher<PostText> {
        &self.publisher
    }
}

#[derive(Deserialize)]
struct NewPost {
    title: String,
}

/// The reference router with posts on Redis: `post.create` and `post.live` as described in the
/// module doc, the other procedures as in [`chat::router`](crate::chat::router).
pub fn router(chat: RedisChat, timer: Arc<dyn Timer>) -> Router<()> {
    let for_create = chat.clone();
    let posts = Router::new()
        .route(
            "create",
            mutation(move |req: Request<(), NewPost>| {
                let chat = for_create.clone();
                async move { chat.create(req.input.title).await.map_err(RpcError::from) }
            })
            .validate_input(|p: &NewPost| check_title(&p.title)),
        )
        .route(
            "live",
            subscription(move |req: Request<(), Option<serde_json::Value>>| {
                let chat = chat.clone();
                let last_event_id = req.last_event_id;
                event_iterator(move |mut emit| async move {
                    // Without a resume id, only posts from now on, as the reference does. A
                    // malformed one is a 400, Redis down a 503.
                    let options = SubscribeOptions {
                        last_event_id,
                        ..SubscribeOptions::new()
                    };
                    let mut live = chat.publisher.subscribe(POSTS, options).await?;
                    while let Some(post) = live.next().await {
                        let post = match post {
                            Ok(post) => post,
                            // Not a post this version can read: skip it, or every client's
                            // stream would end on it, and end again on each resume.
                            Err(RecvError::Undecodable { .. }) => continue,
                            // A gap: the client must refetch (412).
                            Err(err) => return Err(err.into()),
                        };
                        let id = *post.id();
                        let post = RedisPost {
                            id: id.to_string(),
                            title: post.title.clone(),
                        };
                        emit.send(tracked(id, post)?).await?;
                    }
                    // The publisher is gone: the server is shutting down.
                    Ok::<_, RpcError>(())
                })
            }),
        );
    procedures(timer).nest("post", posts)
}
