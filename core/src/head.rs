//! The parts of an HTTP request a context is built from: method, URI, headers, the peer's
//! address, and extensions the server (or a framework around it, such as axum) attached.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::any::{Any, TypeId};
use core::fmt;
use core::net::SocketAddr;

/// The head of an HTTP request, as a context builder sees it ([`App::new`](crate::App::new)).
///
/// Header names are matched without regard to case.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct RequestHead {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The URL path, without the query.
    pub path: String,
    /// The query string, without the `?` (empty when there is none).
    pub query: String,
    /// Header names and values, in the order received.
    pub headers: Vec<(String, String)>,
    /// The address of the client at the other end of the connection, when the server knows
    /// it (the runtime adapters do; under axum, see its `ConnectInfo` in the extensions).
    pub peer: Option<SocketAddr>,
    /// Typed values attached to the request: by the HTTP layer, by a framework around it
    /// (`outer-http` puts axum's or hyper's `http::Extensions` here whole), or by a test.
    pub extensions: Extensions,
    /// What the client sent as tRPC's `connectionParams` (`createWSClient({ connectionParams })`):
    /// the first message of a WebSocket opened with `?connectionParams=1`, read before the
    /// context is built. `None` when the client sent none. Values are strings, as tRPC's are.
    pub connection_params: Option<BTreeMap<String, String>>,
}

impl RequestHead {
    /// A head with a method and a path, and nothing else.
    ///
    /// ```
    /// let head = outer_core::RequestHead::new("GET", "/trpc/ping")
    ///     .with_header("Authorization", "Bearer t");
    /// assert_eq!(head.header("authorization"), Some("Bearer t"));
    /// ```
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            ..Self::default()
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The value of connection parameter `name` (see [`connection_params`](Self::connection_params)).
    ///
    /// ```
    /// let mut head = outer_core::RequestHead::new("GET", "/trpc");
    /// head.connection_params = Some([("token".to_owned(), "t".to_owned())].into());
    /// assert_eq!(head.connection_param("token"), Some("t"));
    /// ```
    pub fn connection_param(&self, name: &str) -> Option<&str> {
        self.connection_params
            .as_ref()?
            .get(name)
            .map(String::as_str)
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A map from a type to one value of it: what an HTTP request's extensions are, without the
/// `http` crate (which needs `std`).
///
/// ```
/// #[derive(Debug, PartialEq)] struct RequestId(u64);
/// let mut extensions = outer_core::Extensions::default();
/// extensions.insert(RequestId(7));
/// assert_eq!(extensions.get::<RequestId>(), Some(&RequestId(7)));
/// assert_eq!(extensions.get::<String>(), None);
/// ```
#[derive(Default)]
pub struct Extensions {
    // A few entries at most: a list beats a map.
    entries: Vec<(TypeId, Box<dyn Any + Send + Sync>)>,
}

impl Extensions {
    /// Puts `value` in, and gives back the value of its type that was there.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: T) -> Option<T> {
        let old = self.remove::<T>();
        self.entries.push((TypeId::of::<T>(), Box::new(value)));
        old
    }

    /// The value of type `T`, if there is one.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.entries
            .iter()
            .find(|(id, _)| *id == TypeId::of::<T>())
            .and_then(|(_, value)| value.downcast_ref())
    }

    /// Takes the value of type `T` out.
    pub fn remove<T: Any + Send + Sync>(&mut self) -> Option<T> {
        let at = self
            .entries
            .iter()
            .position(|(id, _)| *id == TypeId::of::<T>())?;
        let (_, value) = self.entries.swap_remove(at);
        value.downcast().ok().map(|value| *value)
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.entries.len())
            .finish()
    }
}
