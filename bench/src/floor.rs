//! The floor: the least a server must do to serve the chat's `post.create` and `post.live` in
//! oRPC's shape, in axum 0.8 with a `tokio::sync::broadcast` channel. What Outer is measured
//! against: no router, no protocol layer, no resume, no keep-alive.
//!
//! Equivalent where it costs: posts are stored (as every other server here does) and each is
//! serialized to JSON and framed as SSE (`event`, `id`, `data`) once, under the store's lock so
//! ids go out in order; every subscriber then writes the same bytes. A subscriber that lags the
//! channel's 1,024 events skips ahead (the generator counts what it missed).

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Events the channel holds for a slow subscriber before it lags.
const CAPACITY: usize = 1024;

#[derive(Debug)]
struct Floor {
    posts: Mutex<Vec<Post>>,
    frames: broadcast::Sender<Bytes>,
}

#[derive(Debug, Serialize)]
struct Post {
    id: u64,
    title: String,
}

#[derive(Deserialize)]
struct Envelope {
    json: NewPost,
}

#[derive(Deserialize)]
struct NewPost {
    title: String,
}

/// The floor's routes: `POST /rpc/post/create` and `POST /rpc/post/live`.
///
/// ```
/// let app = outer_bench::floor::router();
/// # let _ = app;
/// // axum::serve(listener, app).await
/// ```
pub fn router() -> axum::Router {
    let (frames, _) = broadcast::channel(CAPACITY);
    let floor = Arc::new(Floor {
        posts: Mutex::new(Vec::new()),
        frames,
    });
    axum::Router::new()
        .route("/rpc/post/create", post(create))
        .route("/rpc/post/live", post(live))
        .with_state(floor)
}

async fn create(State(floor): State<Arc<Floor>>, body: Bytes) -> Response {
    let title = match serde_json::from_slice::<Envelope>(&body) {
        Ok(envelope) if !envelope.json.title.trim().is_empty() => envelope.json.title,
        _ => return (StatusCode::BAD_REQUEST, "bad input").into_response(),
    };
    let json = {
        let mut posts = floor.posts.lock().unwrap_or_else(PoisonError::into_inner);
        let post = Post {
            id: posts.len() as u64 + 1,
            title,
        };
        // A struct of a number and a string always serializes.
        let json = serde_json::to_string(&post).unwrap_or_default();
        let frame = format!(
            "event: message\nid: {}\ndata: {{\"json\":{json}}}\n\n",
            post.id
        );
        // No subscriber is no error: the post is stored all the same.
        let _ = floor.frames.send(Bytes::from(frame));
        posts.push(post);
        json
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!("{{\"json\":{json}}}"),
    )
        .into_response()
}

async fn live(State(floor): State<Arc<Floor>>) -> Response {
    let receiver = floor.frames.subscribe();
    let opening =
        futures::stream::once(async { Ok::<_, Infallible>(Bytes::from_static(b": \n\n")) });
    let frames = futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(frame) => return Some((Ok::<_, Infallible>(frame), receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(opening.chain(frames)),
    )
        .into_response()
}
