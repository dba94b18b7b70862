//! The trust roots of a process's HTTPS clients (the SDK's and reqwest's), each read once, from
//! one file where the platform has one.
//!
//! Left to themselves, the SDK's HTTP client and reqwest's platform verifier each call
//! `rustls_native_certs::load_native_certs()`. With neither `SSL_CERT_FILE` nor `SSL_CERT_DIR`
//! set, that reads the bundle file openssl-probe finds AND every file of each certificate
//! directory it finds, which on Debian are the same certificates again (update-ca-certificates(8):
//! the certificates are linked in /etc/ssl/certs and "a concatenated single-file list of
//! certificates is written to /etc/ssl/certs/ca-certificates.crt"): about 300 file opens and
//! twice the roots, for each of the two clients. That was 5-10 ms of each function's cold start
//! on the 2-core build machine (docs/build.md, "Cold start").
//!
//! - [`prefer_bundle_file`] (each function's `main`, before any thread) sets `SSL_CERT_FILE` to
//!   the bundle openssl-probe finds when neither variable is set: the SDK's one native load
//!   (aws-smithy-http-client 1.5 caches it in `NATIVE_ROOTS` for every client of the process)
//!   then reads that file alone. rustls-native-certs documents that it reads `SSL_CERT_FILE`
//!   and `SSL_CERT_DIR` instead of the platform's locations when either is set.
//! - [`roots`] is what reqwest trusts ([`http_client_builder`]): the same file, read once with a
//!   fast PEM reader, or `load_native_certs` where there is no single file ([`Source`]).
//!
//! The distributions' trust-store tools write the whole store into that file: Debian above;
//! Fedora, RHEL and Amazon Linux through update-ca-trust(8), whose extracted bundle is the
//! `tls-ca-bundle.pem` / `ca-bundle.crt` the probe looks for. Assumption (not verifiable here,
//! named in the README): the Lambda `provided.al2023` image's bundle holds its whole trust
//! store, as update-ca-trust writes it on Amazon Linux 2023.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rustls::pki_types::CertificateDer;

/// The roots reqwest trusts in this process, and where they came from.
#[derive(Debug, Default)]
pub struct TrustRoots {
    /// Each usable root, DER.
    pub certs: Vec<CertificateDer<'static>>,
    /// What was read: a file's path, or `SSL_CERT_DIR / platform directories`.
    pub source: String,
    /// Certificates read but refused as trust anchors (reqwest's builder would fail on one).
    pub refused: usize,
    /// What the loader reported (an unreadable file, a block that did not decode), as text.
    pub errors: Vec<String>,
}

/// Where the roots are read from: [`Source::decide`] is the pure choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// One PEM file: `SSL_CERT_FILE`, or the distribution's bundle.
    File(PathBuf),
    /// `load_native_certs`: `SSL_CERT_DIR` is set (with or without a file), or there is no
    /// bundle file and the platform's directories are all there is.
    Native,
}

impl Source {
    /// The choice, from `SSL_CERT_FILE`, whether `SSL_CERT_DIR` is set, and the bundle
    /// openssl-probe found.
    pub fn decide(env_file: Option<PathBuf>, env_dir_set: bool, bundle: Option<PathBuf>) -> Source {
        match (env_dir_set, env_file.or(bundle)) {
            (false, Some(file)) => Source::File(file),
            _ => Source::Native,
        }
    }

    fn from_env() -> Source {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        Source::decide(
            var("SSL_CERT_FILE").map(PathBuf::from),
            var("SSL_CERT_DIR").is_some(),
            openssl_probe::probe().cert_file,
        )
    }
}

/// Sets `SSL_CERT_FILE` to the bundle file openssl-probe finds when neither `SSL_CERT_FILE` nor
/// `SSL_CERT_DIR` is set, and returns it; otherwise changes nothing. Call it first in `main`,
/// before any thread exists: `std::env::set_var` is only sound while the process is
/// single-threaded (its documentation).
pub fn prefer_bundle_file() -> Option<PathBuf> {
    let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set("SSL_CERT_FILE") || set("SSL_CERT_DIR") {
        return None;
    }
    let bundle = openssl_probe::probe().cert_file?;
    std::env::set_var("SSL_CERT_FILE", &bundle);
    Some(bundle)
}

/// This process's roots for reqwest, read on first use; incomplete roots are logged once.
pub fn roots() -> &'static TrustRoots {
    static ROOTS: OnceLock<TrustRoots> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let (certs, source, errors) = match Source::from_env() {
            Source::File(file) => {
                let (certs, errors) = read_bundle(&file);
                (certs, file.display().to_string(), errors)
            }
            Source::Native => {
                let loaded = rustls_native_certs::load_native_certs();
                let errors = loaded.errors.iter().map(ToString::to_string).collect();
                (loaded.certs, "SSL_CERT_DIR / platform directories".to_string(), errors)
            }
        };
        let roots = usable(certs, source, errors);
        if roots.certs.is_empty() || roots.refused > 0 || !roots.errors.is_empty() {
            tracing::warn!(source = %roots.source, roots = roots.certs.len(), refused = roots.refused,
                errors = ?roots.errors, "trust roots incomplete: HTTPS to an unlisted issuer fails");
        }
        roots
    })
}

/// A bundle file's certificates, and what went wrong reading it.
fn read_bundle(file: &Path) -> (Vec<CertificateDer<'static>>, Vec<String>) {
    match std::fs::read(file) {
        Err(e) => (Vec::new(), vec![format!("reading {}: {e}", file.display())]),
        Ok(text) => match pem_certificates(&text) {
            (certs, 0) => (certs, Vec::new()),
            (certs, bad) => (
                certs,
                vec![format!(
                    "{bad} PEM blocks of {} did not decode",
                    file.display()
                )],
            ),
        },
    }
}

/// The `CERTIFICATE` blocks of a PEM text, decoded in order, and how many did not decode
/// (lines outside the blocks, such as a bundle's comments, and other block types are skipped;
/// the markers are whole lines, RFC 7468).
///
/// Not rustls-pki-types' PEM reader: its base64 decoder is constant-time, made for private keys,
/// and was the largest single cost of a function's start-up in a profile of the release build
/// (docs/build.md, "Cold start"). A trust store holds public certificates only, so each block is
/// decoded with base64-simd's forgiving decoder (line breaks skipped), the decoder the SDK's
/// own base64 uses. A test checks both readers agree on this machine's bundle.
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

/// The certificates rustls accepts as trust anchors; the rest counted.
pub fn usable(
    certs: Vec<CertificateDer<'static>>,
    source: String,
    errors: Vec<String>,
) -> TrustRoots {
    let mut out = TrustRoots {
        source,
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

/// A reqwest client builder trusting [`roots`] only, instead of reqwest's platform verifier,
/// which would read the platform's store a second time.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    let certs = roots()
        .certs
        .iter()
        .filter_map(|c| reqwest::Certificate::from_der(c.as_ref()).ok());
    reqwest::Client::builder().tls_certs_only(certs)
}
