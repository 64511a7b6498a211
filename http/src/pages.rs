//! Whole files at exact paths, beside the procedures: an app's page and its script.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{self, Either};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response};
use tower_layer::Layer;

use crate::OuterBody;

/// A tower layer that answers `GET` and `HEAD` at the paths of its pages with their bytes, and
/// passes every other request on. A page is fixed bytes ([`Pages::page`]), or bytes made for
/// each request ([`Pages::render`]: a metrics scrape, say).
///
/// ```
/// # use std::sync::Arc;
/// # use std::time::Duration;
/// # #[derive(Debug)] struct MyTimer;
/// # impl outer_core::rt::Timer for MyTimer {
/// #     fn sleep(&self, _: Duration) -> outer_core::rt::Sleep { Box::pin(std::future::pending()) }
/// #     fn now(&self) -> Duration { Duration::ZERO }
/// # }
/// use outer_http::{OuterService, Pages, ServerConfig};
///
/// let outer = OuterService::new(outer_core::Router::<()>::new(), ServerConfig::default(), Arc::new(MyTimer));
/// let stack = outer.layer(
///     Pages::new()
///         .page("/", "text/html; charset=utf-8", "<!doctype html><p>hello")
///         .page("/app.js", "text/javascript; charset=utf-8", "console.log(1)"),
/// );
/// # let _ = stack;
/// ```
#[derive(Clone, Default)]
pub struct Pages {
    pages: Arc<Vec<Page>>,
}

/// A file served whole at one path.
#[derive(Clone)]
struct Page {
    path: String,
    content_type: HeaderValue,
    body: Body,
}

/// A page's bytes: fixed, or made for each request.
#[derive(Clone)]
enum Body {
    Fixed(bytes::Bytes),
    Render(Arc<dyn Fn() -> bytes::Bytes + Send + Sync>),
}

impl Pages {
    /// No pages yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the file `body` at the exact URL path `path` (e.g. `/`), answered with
    /// `content_type`.
    ///
    /// # Panics
    /// If `content_type` is not a valid header value (it is a constant in practice).
    pub fn page(
        self,
        path: impl Into<String>,
        content_type: &str,
        body: impl Into<bytes::Bytes>,
    ) -> Self {
        self.add(path.into(), content_type, Body::Fixed(body.into()))
    }

    /// Adds a page at `path` whose bytes `render` makes for each request.
    ///
    /// ```
    /// let pages = outer_http::Pages::new().render("/time", "text/plain", || "noon".into());
    /// # let _ = pages;
    /// ```
    ///
    /// # Panics
    /// If `content_type` is not a valid header value.
    pub fn render(
        self,
        path: impl Into<String>,
        content_type: &str,
        render: impl Fn() -> bytes::Bytes + Send + Sync + 'static,
    ) -> Self {
        self.add(path.into(), content_type, Body::Render(Arc::new(render)))
    }

    fn add(mut self, path: String, content_type: &str, body: Body) -> Self {
        #[allow(clippy::expect_used)] // documented: a constant that is wrong is a bug
        let content_type = HeaderValue::from_str(content_type).expect("a valid content-type");
        Arc::make_mut(&mut self.pages).push(Page {
            path,
            content_type,
            body,
        });
        self
    }

    fn find(&self, path: &str) -> Option<&Page> {
        self.pages.iter().find(|page| page.path == path)
    }
}

impl fmt::Debug for Pages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.pages.iter().map(|page| &page.path))
            .finish()
    }
}

impl<S> Layer<S> for Pages {
    type Service = PagesService<S>;

    fn layer(&self, inner: S) -> PagesService<S> {
        PagesService {
            pages: self.clone(),
            inner,
        }
    }
}

/// The service [`Pages`] makes: its pages, then the service inside.
#[derive(Clone, Debug)]
pub struct PagesService<S> {
    pages: Pages,
    inner: S,
}

impl<S, B> tower_service::Service<Request<B>> for PagesService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<OuterBody>>,
{
    type Response = Response<OuterBody>;
    type Error = S::Error;
    type Future = AnswerOrPass<S::Error, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let readable = matches!(*request.method(), Method::GET | Method::HEAD);
        match self.pages.find(request.uri().path()).filter(|_| readable) {
            Some(page) => {
                let bytes = match &page.body {
                    Body::Fixed(bytes) => bytes.clone(),
                    Body::Render(render) => render(),
                };
                answer(bytes, page.content_type.clone())
            }
            None => Either::Right(self.inner.call(request)),
        }
    }
}

/// The future of a layer that answers some requests itself, whole, and passes the rest on.
pub(crate) type AnswerOrPass<E, F> = Either<future::Ready<Result<Response<OuterBody>, E>>, F>;

/// A whole answer of `bytes` as `content_type`, given by a layer itself.
pub(crate) fn answer<E, F>(bytes: bytes::Bytes, content_type: HeaderValue) -> AnswerOrPass<E, F> {
    let mut response = Response::new(OuterBody::full(bytes));
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    Either::Left(future::ready(Ok(response)))
}
