//! A Lambda function's trust roots: the distribution's CA bundle file, read once, for the SDK's
//! HTTP client and reqwest alike.
//!
//! Left to themselves, the SDK's HTTP client and reqwest's platform verifier each call
//! `rustls_native_certs::load_native_certs()`. With neither `SSL_CERT_FILE` nor `SSL_CERT_DIR`
//! set, that reads the bundle file openssl-probe finds AND every file of each certificate
//! directory it finds. On Debian those are the same certificates again (update-ca-certificates(8):
//! the certificates are linked in /etc/ssl/certs and "a concatenated single-file list of
//! certificates is written to /etc/ssl/certs/ca-certificates.crt"): about 147 file opens and
//! twice the roots for each of the two clients. That was 5-10 ms of each function's cold start
//! on the 2-core build machine (docs/build.md, "Cold start").
//!
//! [`prefer_bundle_file`], first in each function's `main`: when neither variable is set and the
//! bundle openssl-probe finds holds usable certificates, it keeps them for reqwest
//! ([`http_client_builder`]) and sets `SSL_CERT_FILE` to that file, so the SDK's one native load
//! (aws-smithy-http-client 1.5 caches it in `NATIVE_ROOTS` for every client of the process)
//! reads that file alone. rustls-native-certs documents that it reads `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` instead of the platform's locations when either is set. Otherwise nothing
//! changes: the platform's own loading, as before. The CLI never calls it, so its clients keep
//! reqwest's platform verifier (the OS verifier on macOS and Windows).
//!
//! What is trusted: the bundle's certificates. The distributions' trust-store tools write the
//! whole store into that file (Debian above; Fedora, RHEL and Amazon Linux through
//! update-ca-trust(8), whose extracted `tls-ca-bundle.pem` is openssl-probe's second candidate
//! and `ca-bundle.crt` links to it). A certificate placed in the directory by hand and never
//! added to the bundle is no longer trusted (on the build machine: Debian's `ssl-cert-snakeoil`,
//! a self-signed localhost certificate). Assumption (not verifiable here, named in the README):
//! the Lambda `provided.al2023` image's bundle holds its whole trust store.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use rustls::pki_types::CertificateDer;

/// The roots of the bundle file, as read for reqwest.
#[derive(Debug, Default)]
pub struct TrustRoots {
    /// Each usable root, DER.
    pub certs: Vec<CertificateDer<'static>>,
    /// The file they were read from.
    pub source: PathBuf,
    /// Certificates read but refused as trust anchors (reqwest's builder would fail on one).
    pub refused: usize,
    /// What went wrong reading the file (unreadable, blocks that did not decode), as text.
    pub errors: Vec<String>,
}

static PINNED: OnceLock<TrustRoots> = OnceLock::new();

/// The bundle to read when neither variable is set (an empty value counts as set, as
/// rustls-native-certs counts it), else `None`: the pure part of [`prefer_bundle_file`].
pub fn bundle_to_pin(
    cert_file_set: bool,
    cert_dir_set: bool,
    probed: Option<PathBuf>,
) -> Option<PathBuf> {
    match (cert_file_set || cert_dir_set, probed) {
        (false, Some(file)) => Some(file),
        _ => None,
    }
}

/// Reads the bundle openssl-probe finds when neither `SSL_CERT_FILE` nor `SSL_CERT_DIR` is set;
/// if it holds at least one usable certificate, keeps its roots for [`http_client_builder`] and
/// sets `SSL_CERT_FILE` to it. Returns the roots kept, or `None` (nothing changed: a variable is
/// set, no bundle, or no usable certificate in it, which is logged).
///
/// # Safety
/// Call it before the process has a second thread (first in `main`, before the tokio runtime):
/// it calls `std::env::set_var`, which is only sound while the process is single-threaded (its
/// documentation; edition 2024 makes it `unsafe`).
pub unsafe fn prefer_bundle_file() -> Option<&'static TrustRoots> {
    let set = |name| std::env::var_os(name).is_some();
    let file = bundle_to_pin(
        set("SSL_CERT_FILE"),
        set("SSL_CERT_DIR"),
        openssl_probe::probe().cert_file,
    )?;
    let roots = read_bundle(&file);
    if roots.refused > 0 || !roots.errors.is_empty() {
        tracing::warn!(source = %roots.source.display(), roots = roots.certs.len(),
            refused = roots.refused, errors = ?roots.errors, "CA bundle partly unusable");
    }
    if roots.certs.is_empty() {
        return None;
    }
    std::env::set_var("SSL_CERT_FILE", &file);
    Some(PINNED.get_or_init(|| roots))
}

/// The usable certificates of a bundle file, and what went wrong reading it.
pub fn read_bundle(file: &Path) -> TrustRoots {
    let (certs, errors) = match std::fs::read(file) {
        Err(e) => (Vec::new(), vec![format!("reading {}: {e}", file.display())]),
        Ok(text) => match pem_certificates(&text) {
            (certs, 0) => (certs, Vec::new()),
            (certs, bad) => (certs, vec![format!("{bad} PEM blocks did not decode")]),
        },
    };
    let mut out = TrustRoots {
        source: file.to_path_buf(),
        errors,
        ..TrustRoots::default()
    };
    for cert in certs {
        match rustls::RootCertStore::empty().add(cert.clone()) {
            Ok(()) => out.certs.push(cert),
            Err(_) => out.refused += 1,
        }
    }
    out
}

/// The `CERTIFICATE` blocks of a PEM text, decoded in order, and how many did not decode
/// (lines outside the blocks, such as a bundle's comments, and other block types are skipped;
/// the markers are whole lines, RFC 7468).
///
/// Not rustls-pki-types' PEM reader: its base64 decoder works a byte at a time and was the
/// largest single cost of a function's start-up in a profile of the release build
/// (docs/build.md, "Cold start"). Each block is decoded with base64-simd (the crate the SDK's
/// base64 uses), whose forgiving decoder skips the line breaks. A test checks both readers agree
/// on fixtures and on this machine's bundle.
pub fn pem_certificates(text: &[u8]) -> (Vec<CertificateDer<'static>>, usize) {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let (mut certs, mut bad) = (Vec::new(), 0);
    let (mut body_start, mut at) = (None, 0);
    for line in text.split(|&b| b == b'\n') {
        let (line_start, marker) = (at, line.trim_ascii());
        at += line.len() + 1;
        if marker == BEGIN {
            bad += usize::from(body_start.replace(at).is_some());
        } else if marker == END {
            let Some(start) = body_start.take() else {
                continue;
            };
            match base64_simd::forgiving_decode_to_vec(&text[start..line_start]) {
                Ok(der) if !der.is_empty() => certs.push(CertificateDer::from(der)),
                _ => bad += 1,
            }
        }
    }
    (certs, bad + usize::from(body_start.is_some()))
}

/// A reqwest client builder for the functions: trusting the bundle's roots when
/// [`prefer_bundle_file`] kept them (instead of reqwest's platform verifier reading the
/// platform's store again), else reqwest's default (its platform verifier). The CLI, which never
/// pins, builds its clients with `reqwest::Client::builder()` directly.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    match PINNED.get() {
        Some(roots) => reqwest::Client::builder().tls_certs_only(
            roots
                .certs
                .iter()
                .filter_map(|c| reqwest::Certificate::from_der(c.as_ref()).ok()),
        ),
        None => reqwest::Client::builder(),
    }
}

/// The SDK's own HTTPS client (rustls with aws-lc, as `default-https-client` builds it), for
/// every client made from one SDK configuration ([`super::sdk_config`]).
///
/// The same client, minus one step: aws-smithy-http-client 1.5's
/// `HyperClient::validate_base_client_config` builds a TLS connector and drops it, "so that
/// native certs load at client initialization time instead of upon first request" (its
/// comment), once per SDK client constructed: each build parses every root into a new rustls
/// configuration. This wrapper leaves that validation at the trait's default (nothing), so the
/// connector is built once, on the first request, and cached by the shared client for every SDK
/// client with the same connect and read timeouts (its `connector_cache`). Requests, timeouts,
/// pooling and the connector itself are the wrapped client's.
pub fn sdk_http_client() -> SharedHttpClient {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https();
    SharedHttpClient::new(NoEagerConnector(https))
}

#[derive(Debug)]
struct NoEagerConnector(SharedHttpClient);

impl HttpClient for NoEagerConnector {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}
