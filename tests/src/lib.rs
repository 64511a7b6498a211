//! End-to-end tests across the Outer crates: the chat example served on each runtime, driven by
//! the real npm clients (`tests/interop`) and compared byte for byte with the reference
//! servers' captures (`tests/fixtures/reference`). This file holds what the tests share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use outer_examples::chat::{self, Chat, ChatCtx, ChatService};
use outer_harness::conformance::{Adapter, RunningServer};
use outer_http::tls::rustls;
use outer_http::{HttpService, OuterService, ServerConfig, Stack};
use outer_smol::testing::Smol;
use outer_tokio::testing::Tokio;

/// The workspace's root folder.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// Serves the chat example on runtime `R` with `config`, on a fresh loopback port, with its
/// pages and the failure-test hooks (`/__test`).
pub fn start_chat<R: Adapter>(config: ServerConfig) -> R::Server {
    R::start(chat_stack::<R>(config))
}

/// The chat example with `config` on runtime `R`'s timer, with its pages and the failure-test
/// hooks (`/__test`): what [`start_chat`] serves, for a test that adds a layer or serves it
/// over TLS.
pub fn chat_stack<R: Adapter>(config: ServerConfig) -> Stack<ChatCtx, ChatService> {
    let app = chat::app(Chat::new(), R::timer());
    chat::stack(OuterService::new(app, config, R::timer()), true)
}

/// A certificate authority and a server certificate it signed, for `localhost` and `127.0.0.1`,
/// made fresh for each test and written as PEM files to a folder of its own, removed on drop:
/// no key material lives in the repository. Clients trust [`ca`](Self::ca) (Node with
/// `NODE_EXTRA_CA_CERTS`, curl with `--cacert`); Chromium is told the server certificate's key
/// (`tests/interop/chromium.mjs`).
#[derive(Debug)]
pub struct Certificates {
    dir: PathBuf,
    /// The authority's certificate (PEM).
    pub ca: PathBuf,
    /// The server's certificate chain (PEM): its certificate, then the authority's.
    pub cert: PathBuf,
    /// The server certificate's private key (PEM, PKCS #8).
    pub key: PathBuf,
}

impl Certificates {
    /// Makes the authority and the server certificate (ECDSA P-256) and writes them out.
    pub fn generate() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Outer test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();

        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();

        static MADE: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "outer-tests-tls-{}-{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        Certificates {
            ca: write("ca.pem", ca.pem()),
            cert: write("cert.pem", format!("{}{}", cert.pem(), ca.pem())),
            key: write("key.pem", key.serialize_pem()),
            dir,
        }
    }

    /// The server's TLS settings for `config` (ALPN `h2` and `http/1.1`), read back from the
    /// files as `chat --tls-cert --tls-key` reads them.
    pub fn server(&self, config: &ServerConfig) -> Arc<rustls::ServerConfig> {
        outer_http::tls::from_pem_files(&self.cert, &self.key, config).unwrap()
    }

    /// A client's TLS settings that trust [`ca`](Self::ca) and nothing else, offering `alpn`.
    pub fn client(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(client)
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The runtimes that serve TLS (`serve_tls`): tokio and smol. [`Adapter::start`], over TLS.
pub trait TlsAdapter: Adapter {
    /// A running TLS server.
    type TlsServer: RunningServer;
    /// Serves `stack` over TLS with `tls` on a fresh loopback port, and returns once it listens.
    fn start_tls<Ctx, S>(
        stack: impl Into<Stack<Ctx, S>>,
        tls: Arc<rustls::ServerConfig>,
    ) -> Self::TlsServer
    where
        Ctx: Clone + Send + 'static,
        S: HttpService;
}

impl TlsAdapter for Tokio {
    type TlsServer = outer_tokio::testing::Running;

    fn start_tls<Ctx, S>(
        stack: impl Into<Stack<Ctx, S>>,
        tls: Arc<rustls::ServerConfig>,
    ) -> Self::TlsServer
    where
        Ctx: Clone + Send + 'static,
        S: HttpService,
    {
        let stack = stack.into();
        outer_tokio::testing::start_with(|listener| outer_tokio::serve_tls(listener, stack, tls))
    }
}

impl TlsAdapter for Smol {
    type TlsServer = outer_smol::testing::Running;

    /// On smol's global executor, as `Smol` serves.
    fn start_tls<Ctx, S>(
        stack: impl Into<Stack<Ctx, S>>,
        tls: Arc<rustls::ServerConfig>,
    ) -> Self::TlsServer
    where
        Ctx: Clone + Send + 'static,
        S: HttpService,
    {
        let stack = stack.into();
        outer_smol::testing::start_with(|listener| outer_smol::serve_tls(listener, stack, tls))
    }
}

/// The chat as [`start_chat`] serves it, over TLS with `certificates`.
pub fn start_chat_tls<R: TlsAdapter>(
    config: ServerConfig,
    certificates: &Certificates,
) -> R::TlsServer {
    let tls = certificates.server(&config);
    R::start_tls(chat_stack::<R>(config), tls)
}

/// Installs the interop scripts' npm packages from their lockfile, once per test run. Node and
/// npm must be installed: without them these tests fail (they cannot pass by skipping).
pub fn npm_ci() -> PathBuf {
    static DONE: Mutex<bool> = Mutex::new(false);
    let dir = workspace().join("tests/interop");
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if !*done && !installed(&dir) {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed for the interop tests (install Node.js 20+)");
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }
    *done = true;
    dir
}

/// Whether `dir/node_modules` holds every package of `dir/package-lock.json`: a checkout that ran
/// `npm ci` before a package was added to the lockfile (`ws`, for the WebSocket scripts) must
/// install again, not fail with a missing module.
fn installed(dir: &Path) -> bool {
    if !dir.join("node_modules/.package-lock.json").exists() {
        return false;
    }
    let Ok(lock) = std::fs::read(dir.join("package-lock.json")) else {
        return false;
    };
    let Ok(lock) = serde_json::from_slice::<serde_json::Value>(&lock) else {
        return false;
    };
    let Some(packages) = lock.get("packages").and_then(serde_json::Value::as_object) else {
        return false;
    };
    packages
        .iter()
        .filter(|(path, entry)| {
            // Optional packages for another platform are in the lockfile but not installed.
            path.starts_with("node_modules/")
                && entry.get("optional").and_then(serde_json::Value::as_bool) != Some(true)
        })
        .all(|(path, _)| dir.join(path).join("package.json").exists())
}

/// Runs `node <script> <base>` in tests/interop with `env`, and fails the test with the
/// script's output if it fails.
pub fn run_node(script: &str, base: &str, env: &[(&str, String)]) -> String {
    let dir = npm_ci();
    let output = Command::new("node")
        .arg(script)
        .arg(base)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(&dir)
        .output()
        .expect("node is needed for the interop tests (install Node.js 20+)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "node {script} {base} failed:\n{text}"
    );
    text
}

/// `router` with the two procedures of the oRPC 2 reference server (`tests/reference/orpc-v2`)
/// that the chat has no use for: `nothing`, a call that returns `()`, and `finite`, a stream of
/// one `{"n":1}` that returns `()`. What oRPC 2 writes for JavaScript's `undefined` is seen
/// through them.
pub fn with_undefined_procedures<Ctx>(router: outer_core::Router<Ctx>) -> outer_core::Router<Ctx>
where
    Ctx: Clone + Send + Sync + 'static,
{
    let os = outer_core::procedure::<Ctx>();
    router
        .route("nothing", os.query(|_| async { Ok(()) }))
        .route(
            "finite",
            os.subscription(|_| async {
                Ok(outer_core::event_iterator(|mut emit| async move {
                    emit.send_value(serde_json::json!({"n": 1})).await?;
                    Ok(())
                }))
            }),
        )
}
