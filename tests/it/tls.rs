//! The process's trust roots (src/aws/tls.rs): where they are read from, which certificates are
//! kept, and that the fast PEM reader reads what rustls reads.

use std::path::PathBuf;

use orderbroker::aws::tls::{self, Source};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

const TEST_ROOT: &[u8] = include_bytes!("../fixtures/test-root.pem");

fn test_root() -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(TEST_ROOT).expect("the fixture is one PEM certificate")
}

#[test]
fn one_file_when_there_is_one_the_platforms_loader_when_a_directory_is_named() {
    let bundle = || Some(PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
    let env_file = || Some(PathBuf::from("/opt/roots.pem"));
    assert_eq!(
        Source::decide(env_file(), false, bundle()),
        Source::File(env_file().unwrap())
    );
    assert_eq!(
        Source::decide(None, false, bundle()),
        Source::File(bundle().unwrap())
    );
    // SSL_CERT_DIR set: rustls-native-certs reads the directory (and the file, if named).
    assert_eq!(Source::decide(env_file(), true, bundle()), Source::Native);
    assert_eq!(Source::decide(None, true, None), Source::Native);
    // No bundle: the platform's directories are all there is.
    assert_eq!(Source::decide(None, false, None), Source::Native);
}

#[test]
fn a_certificate_rustls_cannot_anchor_on_is_counted_and_dropped_not_handed_to_reqwest() {
    let garbage = CertificateDer::from(b"\x30\x03\x02\x01\x00".to_vec());
    let roots = tls::usable(vec![garbage, test_root()], "test".into(), vec![]);
    assert_eq!(roots.refused, 1);
    assert_eq!(roots.certs, vec![test_root()]);
}

#[test]
fn a_bundles_certificate_blocks_decode_in_order_and_everything_else_is_skipped_or_counted() {
    let text = [
        b"# Subject: a comment between blocks, as Fedora's bundle has\n".as_slice(),
        TEST_ROOT,
        b"-----BEGIN TRUSTED CERTIFICATE-----\nAAAA\n-----END TRUSTED CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n",
        TEST_ROOT,
        b"-----BEGIN CERTIFICATE-----\nMIIB",
    ]
    .concat();
    let (certs, bad) = tls::pem_certificates(&text);
    assert_eq!(certs, vec![test_root(), test_root()]);
    assert_eq!(bad, 2, "the undecodable block and the unterminated one");
}

#[test]
fn the_fast_pem_reader_agrees_with_rustls_on_this_machines_bundle() {
    let Some(bundle) = openssl_probe::probe().cert_file else {
        eprintln!("no PEM bundle on this machine: compared on the fixture only");
        return;
    };
    let text = std::fs::read(&bundle).expect("the probed bundle is readable");
    let reference: Vec<CertificateDer> = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<_, _>>()
        .expect("rustls reads the bundle");
    let (certs, bad) = tls::pem_certificates(&text);
    assert_eq!(bad, 0);
    assert!(!reference.is_empty());
    assert_eq!(certs, reference, "{}", bundle.display());
}

#[test]
fn nothing_usable_gives_an_empty_store_not_a_panic() {
    let roots = tls::usable(vec![], "nowhere".into(), vec!["unreadable".into()]);
    assert!(roots.certs.is_empty());
    assert_eq!(roots.errors, vec!["unreadable".to_string()]);
}

#[test]
fn this_machines_roots_are_read_once_and_reqwest_builds_on_them() {
    let first = tls::roots();
    assert!(
        !first.certs.is_empty(),
        "no trust roots from {}: {:?}",
        first.source,
        first.errors
    );
    assert!(std::ptr::eq(first, tls::roots()), "read once per process");
    tls::http_client_builder()
        .build()
        .expect("reqwest takes the roots");
}
