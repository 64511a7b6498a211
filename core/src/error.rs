//! The one error type of Outer, and the table of error codes both wire protocols share.
//!
//! oRPC sends an error as `{code, status, message, data}`; tRPC as a JSON-RPC number plus
//! `{code, httpStatus}`. Both start from the same code names, so one table serves both.

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use core::fmt;
use serde_json::Value;

/// A known error code: its name on the wire, its HTTP status and its JSON-RPC code (tRPC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorCode {
    /// The code as both protocols spell it, e.g. `BAD_REQUEST`.
    pub name: &'static str,
    /// The HTTP status it answers with.
    pub status: u16,
    /// tRPC's JSON-RPC code for it.
    pub jsonrpc: i32,
}

macro_rules! codes {
    ($($ident:ident = $name:literal, $status:literal, $jsonrpc:literal;)*) => {
        impl ErrorCode {
            $(
                #[doc = concat!("`", $name, "`: HTTP ", stringify!($status), ", JSON-RPC ", stringify!($jsonrpc), ".")]
                pub const $ident: ErrorCode = ErrorCode { name: $name, status: $status, jsonrpc: $jsonrpc };
            )*
            /// Every known code: the union of oRPC's and tRPC's tables.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$ident),*];
        }
    };
}

codes! {
    PARSE_ERROR = "PARSE_ERROR", 400, -32700;
    BAD_REQUEST = "BAD_REQUEST", 400, -32600;
    UNAUTHORIZED = "UNAUTHORIZED", 401, -32001;
    PAYMENT_REQUIRED = "PAYMENT_REQUIRED", 402, -32002;
    FORBIDDEN = "FORBIDDEN", 403, -32003;
    NOT_FOUND = "NOT_FOUND", 404, -32004;
    METHOD_NOT_SUPPORTED = "METHOD_NOT_SUPPORTED", 405, -32005;
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE", 406, -32600;
    TIMEOUT = "TIMEOUT", 408, -32008;
    CONFLICT = "CONFLICT", 409, -32009;
    PRECONDITION_FAILED = "PRECONDITION_FAILED", 412, -32012;
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE", 413, -32013;
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE", 415, -32015;
    UNPROCESSABLE_CONTENT = "UNPROCESSABLE_CONTENT", 422, -32022;
    PRECONDITION_REQUIRED = "PRECONDITION_REQUIRED", 428, -32028;
    TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS", 429, -32029;
    CLIENT_CLOSED_REQUEST = "CLIENT_CLOSED_REQUEST", 499, -32099;
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR", 500, -32603;
    NOT_IMPLEMENTED = "NOT_IMPLEMENTED", 501, -32603;
    BAD_GATEWAY = "BAD_GATEWAY", 502, -32603;
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE", 503, -32603;
    GATEWAY_TIMEOUT = "GATEWAY_TIMEOUT", 504, -32603;
}

impl ErrorCode {
    /// Looks a code up by its wire name.
    ///
    /// ```
    /// use outer_core::ErrorCode;
    /// assert_eq!(ErrorCode::lookup("CONFLICT"), Some(ErrorCode::CONFLICT));
    /// assert_eq!(ErrorCode::lookup("NOPE"), None);
    /// ```
    pub fn lookup(name: &str) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| c.name == name)
    }

    /// The known code tRPC uses for a JSON-RPC number (several 5xx share -32603: the first,
    /// INTERNAL_SERVER_ERROR, is returned).
    pub fn from_jsonrpc(code: i32) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| c.jsonrpc == code)
    }

    /// The default message for the code: its name in words, as oRPC does (`Bad Request`).
    pub fn default_message(&self) -> String {
        title_case(self.name)
    }
}

fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, word) in name.split('_').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars.map(|c| c.to_ascii_lowercase()));
        }
    }
    out
}

/// An error a procedure returns, or the server makes of bad input: a code, an HTTP status, a
/// message a person can act on, and optional JSON data for the client.
///
/// A status of 500 or more means the failure is the server's and may pass: clients retry those
/// and give up on the rest.
///
/// ```
/// use outer_core::{ErrorCode, RpcError};
/// let err = RpcError::new(ErrorCode::BAD_REQUEST, "nope").with_data(serde_json::json!({"why": "x"}));
/// assert_eq!((err.code(), err.status(), err.message()), ("BAD_REQUEST", 400, "nope"));
/// assert!(!err.is_retryable());
///
/// // A code of your own: status 500 unless you say otherwise, as in oRPC.
/// let custom = RpcError::custom("RATE_LIMITED", "slow down").with_status(429);
/// assert_eq!(custom.status(), 429);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RpcError {
    code: Cow<'static, str>,
    status: u16,
    message: String,
    data: Option<Value>,
    defined: bool,
}

impl RpcError {
    /// An error with a known code; its status comes from the table.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: Cow::Borrowed(code.name),
            status: code.status,
            message: message.into(),
            data: None,
            defined: false,
        }
    }

    /// An error with a known code and the code's default message (`Not Found`).
    pub fn from_code(code: ErrorCode) -> Self {
        Self::new(code, code.default_message())
    }

    /// An error with a code of your own. Its status is the table's if the name is known, else 500.
    pub fn custom(code: impl Into<String>, message: impl Into<String>) -> Self {
        let code: String = code.into();
        match ErrorCode::lookup(&code) {
            Some(known) => Self::new(known, message),
            None => Self {
                code: Cow::Owned(code),
                status: 500,
                message: message.into(),
                data: None,
                defined: false,
            },
        }
    }

    /// A server fault with a message.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::INTERNAL_SERVER_ERROR, message)
    }

    /// Sets the HTTP status. A status outside 400..=599 is not an error status; it becomes 500.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = if (400..600).contains(&status) {
            status
        } else {
            500
        };
        self
    }

    /// Attaches JSON data for the client.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// Marks the error as one the procedure declares (oRPC's `defined: true`).
    pub fn defined(mut self, defined: bool) -> Self {
        self.defined = defined;
        self
    }

    /// The code, e.g. `BAD_REQUEST`.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The data, if any.
    pub fn data(&self) -> Option<&Value> {
        self.data.as_ref()
    }

    /// Whether the procedure declares this error (oRPC's `defined`).
    pub fn is_defined(&self) -> bool {
        self.defined
    }

    /// True for 5xx: the client may retry (reconnect and resume).
    pub fn is_retryable(&self) -> bool {
        self.status >= 500
    }

    /// tRPC's JSON-RPC number for this error: the table's for a known code, else by status class
    /// (-32603 for 5xx, -32600 for the rest).
    pub fn jsonrpc_code(&self) -> i32 {
        match ErrorCode::lookup(&self.code) {
            Some(known) => known.jsonrpc,
            None if self.is_retryable() => ErrorCode::INTERNAL_SERVER_ERROR.jsonrpc,
            None => ErrorCode::BAD_REQUEST.jsonrpc,
        }
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl core::error::Error for RpcError {}

/// An error that becomes an [`RpcError`]: implement it (rather than `From<E> for RpcError`)
/// and `?` converts the error in generic code too. `From` then comes with it, so
/// `RpcError::from(e)` and `e.into()` work as well.
///
/// The publishers' errors implement it, which is what lets a handler written over any
/// [`Publisher`](crate::publisher::Publisher) use `?` on its calls: a bound `P::Error:
/// IntoRpcError` carries the conversion, where `Into<RpcError>` would not reach `?`.
///
/// ```
/// use outer_core::{ErrorCode, IntoRpcError, RpcError};
/// struct Missing(&'static str);
/// impl IntoRpcError for Missing {
///     fn into_rpc_error(self) -> RpcError {
///         RpcError::new(ErrorCode::NOT_FOUND, format!("no {}", self.0))
///     }
/// }
/// fn find() -> Result<(), RpcError> {
///     Err(Missing("room"))?
/// }
/// assert_eq!(find().unwrap_err().status(), 404);
/// ```
pub trait IntoRpcError {
    /// The error as an [`RpcError`].
    fn into_rpc_error(self) -> RpcError;
}

impl<E: IntoRpcError> From<E> for RpcError {
    fn from(err: E) -> Self {
        err.into_rpc_error()
    }
}

impl From<crate::event::MetaError> for RpcError {
    fn from(err: crate::event::MetaError) -> Self {
        RpcError::internal(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_both_protocols() {
        // Spot checks against ../shared/protocols: oRPC's status and tRPC's JSON-RPC number.
        let rows = [
            ("PARSE_ERROR", 400, -32700),
            ("BAD_REQUEST", 400, -32600),
            ("UNAUTHORIZED", 401, -32001),
            ("NOT_FOUND", 404, -32004),
            ("METHOD_NOT_SUPPORTED", 405, -32005),
            ("UNSUPPORTED_MEDIA_TYPE", 415, -32015),
            ("CLIENT_CLOSED_REQUEST", 499, -32099),
            ("INTERNAL_SERVER_ERROR", 500, -32603),
            ("GATEWAY_TIMEOUT", 504, -32603),
        ];
        for (name, status, jsonrpc) in rows {
            let code = ErrorCode::lookup(name).unwrap();
            assert_eq!((code.status, code.jsonrpc), (status, jsonrpc), "{name}");
        }
        assert_eq!(ErrorCode::ALL.len(), 22);
    }

    #[test]
    fn five_hundreds_are_retryable_and_the_rest_are_not() {
        for code in ErrorCode::ALL {
            let err = RpcError::from_code(*code);
            assert_eq!(err.is_retryable(), code.status >= 500, "{}", code.name);
        }
    }

    #[test]
    fn unknown_codes_default_to_500_and_map_to_jsonrpc_by_class() {
        let err = RpcError::custom("OUT_OF_CHEESE", "none left");
        assert_eq!(err.status(), 500);
        assert_eq!(err.jsonrpc_code(), -32603);
        let err = err.with_status(418);
        assert_eq!(err.jsonrpc_code(), -32600);
        assert_eq!(RpcError::custom("X", "m").with_status(200).status(), 500);
    }

    #[test]
    fn default_messages_read_as_words() {
        assert_eq!(
            RpcError::from_code(ErrorCode::NOT_FOUND).message(),
            "Not Found"
        );
        assert_eq!(
            ErrorCode::INTERNAL_SERVER_ERROR.default_message(),
            "Internal Server Error"
        );
    }
}
