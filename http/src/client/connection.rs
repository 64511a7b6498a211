//! One HTTP/1.1 connection as the client uses it: opened through the [`Transport`], driven
//! in the same task as the request that uses it (nothing is spawned, so dropping the request
//! closes the socket), with bodies read under a cap and waits bounded by the timer.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::{select, Either};
use http::header::CONTENT_LENGTH;
use http::{Request, Response};
use http_body::Body as _;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use outer_core::rt::Timer;
use outer_core::{ErrorCode, RpcError};

use super::{Target, Transport};

/// The hyper connection's task: it moves the bytes of the request and of the answer's body,
/// so it is polled whenever they are awaited. Type-erased, so that a subscription need not
/// name the transport.
pub(crate) struct Driver(Option<Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>>);

impl Driver {
    /// Moves bytes as far as the socket allows. Once the connection ended it stays ended;
    /// whatever was waiting on it (a response, the body) then sees the error itself.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) {
        if let Some(connection) = &mut self.0 {
            if let Poll::Ready(result) = connection.as_mut().poll(cx) {
                if let Err(err) = result {
                    tracing::debug!(error = %err, "client connection ended with an error");
                }
                self.0 = None;
            }
        }
    }

    /// Awaits `future` while moving the connection's bytes.
    pub(crate) async fn drive<F: Future>(&mut self, future: F) -> F::Output {
        let mut future = pin!(future);
        poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(output);
            }
            self.poll(cx);
            // The connection may have just delivered what the future waits for.
            future.as_mut().poll(cx)
        })
        .await
    }
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Driver(open)"
        } else {
            "Driver(closed)"
        })
    }
}

/// An open connection, ready for one request.
#[derive(Debug)]
pub(crate) struct Open {
    pub(crate) sender: SendRequest<Full<Bytes>>,
    pub(crate) driver: Driver,
}

impl Open {
    /// Sends `request` and waits for the answer's head.
    pub(crate) async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, RpcError> {
        let answer = self.sender.send_request(request);
        self.driver.drive(answer).await.map_err(broken)
    }

    /// Reads the answer's whole body, refusing more than `limit` bytes.
    pub(crate) async fn read_body(
        &mut self,
        response: Response<Incoming>,
        limit: usize,
    ) -> Result<Bytes, ReadError> {
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(ReadError::TooLarge(limit));
        }
        let mut body = response.into_body();
        let mut bytes = BytesMut::new();
        loop {
            let frame = self
                .driver
                .drive(poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)))
                .await;
            match frame {
                None => return Ok(bytes.freeze()),
                Some(Err(err)) => return Err(ReadError::Broken(err)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if bytes.len() + data.len() > limit {
                            return Err(ReadError::TooLarge(limit));
                        }
                        bytes.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

/// Opens connections; the transport with its I/O type erased.
pub(crate) trait Dial: Send + Sync + fmt::Debug {
    fn dial<'a>(
        &'a self,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = Result<Open, RpcError>> + Send + 'a>>;
}

impl<R: Transport> Dial for R {
    fn dial<'a>(
        &'a self,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = Result<Open, RpcError>> + Send + 'a>> {
        Box::pin(async move {
            let io = self
                .connect(&target.host, target.port)
                .await
                .map_err(|err| {
                    RpcError::new(
                        ErrorCode::SERVICE_UNAVAILABLE,
                        format!(
                            "could not connect to {}:{}: {err}",
                            target.host, target.port
                        ),
                    )
                })?;
            let (sender, connection) = http1::handshake(io).await.map_err(broken)?;
            Ok(Open {
                sender,
                driver: Driver(Some(Box::pin(connection))),
            })
        })
    }
}

/// Runs `future` for at most `timeout`: `None` when the time ran out first (the future is
/// dropped, and with it any connection it held).
pub(crate) async fn within<F: Future>(
    timer: &dyn Timer,
    timeout: Option<Duration>,
    future: F,
) -> Option<F::Output> {
    let Some(timeout) = timeout else {
        return Some(future.await);
    };
    match select(pin!(future), timer.sleep(timeout)).await {
        Either::Left((output, _)) => Some(output),
        Either::Right(((), _)) => None,
    }
}

/// The error for a call that took longer than the request timeout.
pub(crate) fn timed_out(timeout: Option<Duration>) -> RpcError {
    RpcError::new(
        ErrorCode::GATEWAY_TIMEOUT,
        format!("no answer within the request timeout of {timeout:?}"),
    )
}

fn broken(err: hyper::Error) -> RpcError {
    RpcError::new(
        ErrorCode::SERVICE_UNAVAILABLE,
        format!("the connection to the server failed: {err}"),
    )
}

/// Why a body could not be read whole.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// It is larger than this limit.
    TooLarge(usize),
    /// The connection broke first.
    Broken(hyper::Error),
}

impl From<ReadError> for RpcError {
    fn from(err: ReadError) -> Self {
        match err {
            ReadError::TooLarge(limit) => RpcError::new(
                ErrorCode::BAD_GATEWAY,
                format!(
                    "the answer is larger than the client's limit of {limit} bytes (max_body_bytes)"
                ),
            ),
            ReadError::Broken(err) => broken(err),
        }
    }
}
