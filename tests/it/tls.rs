//! A function's trust roots (src/aws/tls.rs): when the bundle file is pinned, which certificates
//! are kept, and that the fast PEM reader reads what rustls-pki-types reads.

use std::path::PathBuf;

use orderbroker::aws::tls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

const TEST_ROOT: &[u8] = include_bytes!("../fixtures/test-root.pem");

fn test_root() -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(TEST_ROOT).expect("the fixture is one PEM certificate")
}

/// What rustls-pki-types reads from the same text: the reference for the fast reader.
fn reference(text: &[u8]) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(text)
        .filter_map(Result::ok)
        .map(|c| c.into_owned())
        .collect()
}

fn temp_file(name: &str, content: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("orderbroker-tls-{}-{name}", std::process::id()));
    std::fs::write(&path, content).expect("temp file");
    path
}

#[test]
fn the_bundle_is_pinned_only_when_neither_variable_is_set_and_one_is_found() {
    let bundle = || Some(PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
    assert_eq!(tls::bundle_to_pin(false, false, bundle()), bundle());
    // Either variable set (even empty): rustls-native-certs reads what it names, untouched.
    assert_eq!(tls::bundle_to_pin(true, false, bundle()), None);
    assert_eq!(tls::bundle_to_pin(false, true, bundle()), None);
    // No bundle: the platform's directories are all there is.
    assert_eq!(tls::bundle_to_pin(false, false, None), None);
}

#[test]
fn the_fast_reader_agrees_with_rustls_on_line_endings_spaces_and_stray_markers() {
    let crlf = String::from_utf8(TEST_ROOT.to_vec())
        .unwrap()
        .replace('\n', "\r\n");
    let spaced = String::from_utf8(TEST_ROOT.to_vec())
        .unwrap()
        .replace("-----\n", "-----  \n");
    let texts: Vec<Vec<u8>> = vec![
        TEST_ROOT.to_vec(),
        crlf.into_bytes(),
        spaced.into_bytes(),
        [b"-----END CERTIFICATE-----\n".as_slice(), TEST_ROOT].concat(),
        [
            b"# Subject: a comment, as Fedora's bundle has\n".as_slice(),
            TEST_ROOT,
            TEST_ROOT,
        ]
        .concat(),
    ];
    for text in texts {
        let (certs, bad) = tls::pem_certificates(&text);
        assert_eq!(
            certs,
            reference(&text),
            "{}",
            String::from_utf8_lossy(&text)
        );
        assert_eq!(bad, 0);
    }
}

#[test]
fn blocks_that_do_not_decode_are_counted_and_other_block_types_skipped() {
    let text = [
        TEST_ROOT,
        b"-----BEGIN TRUSTED CERTIFICATE-----\nAAAA\n-----END TRUSTED CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        TEST_ROOT,
        b"-----BEGIN CERTIFICATE-----\nMIIB",
    ]
    .concat();
    let (certs, bad) = tls::pem_certificates(&text);
    assert_eq!(certs, vec![test_root(), test_root()]);
    assert_eq!(
        bad, 3,
        "the undecodable block, the empty one and the unterminated one"
    );
}

#[test]
fn the_fast_reader_agrees_with_rustls_on_this_machines_bundle() {
    let bundle = openssl_probe::probe()
        .cert_file
        .expect("this machine has a CA bundle (make test downloads over HTTPS with it)");
    let text = std::fs::read(&bundle).expect("the probed bundle is readable");
    let (certs, bad) = tls::pem_certificates(&text);
    assert_eq!(bad, 0);
    assert!(
        certs.len() > 10,
        "{} certificates in {}",
        certs.len(),
        bundle.display()
    );
    assert_eq!(certs, reference(&text), "{}", bundle.display());
}

#[test]
fn a_certificate_rustls_cannot_anchor_on_is_counted_and_dropped() {
    let garbage = b"-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";
    let path = temp_file("mixed.pem", &[garbage.as_slice(), TEST_ROOT].concat());
    let roots = tls::read_bundle(&path);
    std::fs::remove_file(&path).ok();
    assert_eq!((roots.certs, roots.refused), (vec![test_root()], 1));
    assert!(roots.errors.is_empty(), "{:?}", roots.errors);
}

#[test]
fn a_missing_or_empty_bundle_gives_no_roots_and_says_why() {
    let missing = tls::read_bundle(std::path::Path::new("/nonexistent/orderbroker/ca.pem"));
    assert!(missing.certs.is_empty());
    assert!(
        missing.errors[0].contains("/nonexistent/orderbroker/ca.pem"),
        "{:?}",
        missing.errors
    );
    let path = temp_file("empty.pem", b"");
    let empty = tls::read_bundle(&path);
    std::fs::remove_file(&path).ok();
    assert!(empty.certs.is_empty() && empty.refused == 0);
}

#[test]
fn without_a_pinned_bundle_reqwest_keeps_its_platform_verifier_and_builds() {
    // Nothing in the test process calls prefer_bundle_file (it sets an environment variable,
    // unsound with the test harness's threads): this is the CLI's path.
    tls::http_client_builder()
        .build()
        .expect("reqwest's default builder");
}
