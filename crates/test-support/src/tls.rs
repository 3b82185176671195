//! A certificate authority of the test's own and a certificate it signed for `127.0.0.1`, made
//! with the `openssl` command, for https peers on this machine. A process trusts the authority
//! through `SSL_CERT_FILE` (read by the system's certificate loading that rustls uses here).

use std::{path::PathBuf, process::Command};

/// The PEM files, in a directory that lives as long as this value.
#[derive(Debug)]
pub struct TestCertificates {
    _dir: tempfile::TempDir,
    /// The authority's certificate: what `SSL_CERT_FILE` names.
    pub authority: PathBuf,
    /// The certificate for `127.0.0.1`, and its key.
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?}");
}

impl TestCertificates {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let file = |name: &str| dir.path().join(name);
        let path = |name: &str| file(name).to_string_lossy().into_owned();
        let curve = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut authority = vec!["req", "-x509"];
        authority.extend(curve);
        let (ca_key, ca_pem) = (path("ca.key"), path("ca.pem"));
        authority.extend([
            "-keyout",
            &ca_key,
            "-out",
            &ca_pem,
            "-days",
            "2",
            "-subj",
            "/CN=Switchboard test authority",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&authority);
        let (key, csr, cert) = (path("leaf.key"), path("leaf.csr"), path("leaf.pem"));
        let mut request = vec!["req", "-new"];
        request.extend(curve);
        request.extend([
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ]);
        openssl(&request);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-copy_extensions",
            "copyall",
        ]);
        Self {
            authority: file("ca.pem"),
            cert: file("leaf.pem"),
            key: file("leaf.key"),
            _dir: dir,
        }
    }
}

impl Default for TestCertificates {
    fn default() -> Self {
        Self::new()
    }
}
