//! TLS settings for Outer's servers, with rustls: a certificate chain and its key from PEM
//! files, and ALPN offering HTTP/2 and HTTP/1.1 (so browsers use HTTP/2).
//!
//! The handshake itself is the adapter's (`outer_tokio::serve_tls` with tokio-rustls,
//! `outer_smol::serve_tls` with futures-rustls); it runs in each connection's own task, within
//! [`ServerConfig::header_read_timeout`], never in the accept loop.
//!
//! rustls runs on its default crypto provider, aws-lc-rs, which has the post-quantum key
//! exchange (X25519MLKEM768) that current browsers offer first.

use std::io;
use std::path::Path;
use std::sync::Arc;

pub use rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::ServerConfig;

/// The ALPN protocols a server offers, most preferred first: `h2` when
/// [`ServerConfig::http2`] is on, and `http/1.1`.
pub fn alpn_protocols(config: &ServerConfig) -> Vec<Vec<u8>> {
    let mut protocols = Vec::with_capacity(2);
    if config.http2.enabled {
        protocols.push(b"h2".to_vec());
    }
    protocols.push(b"http/1.1".to_vec());
    protocols
}

/// A rustls server configuration from a PEM certificate chain (the server's certificate
/// first, then its intermediates) and a PEM private key (PKCS #8, PKCS #1 or SEC1), with
/// ALPN set for `config`. Errors name the file and what is wrong with it.
///
/// ```no_run
/// let tls = outer_http::tls::from_pem_files("cert.pem", "key.pem", &Default::default())?;
/// assert_eq!(tls.alpn_protocols[0], b"h2");
/// # Ok::<_, std::io::Error>(())
/// ```
pub fn from_pem_files(
    cert: impl AsRef<Path>,
    key: impl AsRef<Path>,
    config: &ServerConfig,
) -> io::Result<Arc<rustls::ServerConfig>> {
    let (cert, key) = (cert.as_ref(), key.as_ref());
    let read = |path: &Path| {
        std::fs::read(path).map_err(|err| {
            io::Error::new(err.kind(), format!("cannot read {}: {err}", path.display()))
        })
    };
    from_pem(&read(cert)?, &read(key)?, config).map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("{} and {}: {err}", cert.display(), key.display()),
        )
    })
}

/// As [`from_pem_files`], from the files' bytes.
pub fn from_pem(
    cert: &[u8],
    key: &[u8],
    config: &ServerConfig,
) -> io::Result<Arc<rustls::ServerConfig>> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| invalid(format!("the certificate chain is not valid PEM: {err}")))?;
    if chain.is_empty() {
        return Err(invalid("no certificate in the certificate file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|err| invalid(format!("no private key in the key file: {err}")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| invalid(err.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|err| {
            invalid(format!(
                "the certificate and key do not make a server: {err}"
            ))
        })?;
    tls.alpn_protocols = alpn_protocols(config);
    Ok(Arc::new(tls))
}

/// `tls` as a server for `config` uses it: ALPN set for `config` unless the application set
/// its own.
pub fn with_alpn(
    tls: Arc<rustls::ServerConfig>,
    config: &ServerConfig,
) -> Arc<rustls::ServerConfig> {
    if !tls.alpn_protocols.is_empty() {
        return tls;
    }
    let mut tls = Arc::unwrap_or_clone(tls);
    tls.alpn_protocols = alpn_protocols(config);
    Arc::new(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pem_is_an_error_that_says_what_is_wrong() {
        let config = ServerConfig::default();
        let err = from_pem(b"", b"", &config).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("no certificate"), "{err}");
        let err =
            from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem", &config).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    }

    #[test]
    fn alpn_offers_h2_only_when_http2_is_on() {
        let mut config = ServerConfig::default();
        assert_eq!(
            alpn_protocols(&config),
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        config.http2.enabled = false;
        assert_eq!(alpn_protocols(&config), [b"http/1.1".to_vec()]);
    }
}
