//! Certificates: the cluster CA, the API serving certificate, client certificates, and the
//! admin kubeconfig.
//!
//! Everything lives in `<data-dir>/pki/`. On first start the CA, a serving certificate and an
//! admin client certificate (`O=system:masters`) are generated; later starts reuse them. The
//! serving certificate is reissued (by the same CA) when its SAN list changes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Errors of certificate handling.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file in the PKI directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Generating or parsing a certificate or key failed.
    #[error("certificate {what}: {message}")]
    Cert {
        /// Which certificate.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

fn cert_err(what: &'static str) -> impl Fn(rcgen::Error) -> TlsError {
    move |e| TlsError::Cert {
        what,
        message: e.to_string(),
    }
}

/// The loaded key material.
pub struct Pki {
    /// PEM of the CA certificate.
    pub ca_pem: String,
    ca_key_pem: String,
    /// PEM of the serving certificate.
    pub server_cert_pem: String,
    server_key_pem: String,
    /// PEM of the admin client certificate.
    pub admin_cert_pem: String,
    /// PEM of the admin client key.
    pub admin_key_pem: String,
}

/// A client certificate with its key, both PEM.
pub struct IssuedClientCert {
    /// Certificate PEM.
    pub cert_pem: String,
    /// Key PEM.
    pub key_pem: String,
}

impl Pki {
    /// Loads the PKI from `dir`, creating what is missing; reissues the serving certificate
    /// if `sans` differ from those it was issued for.
    pub fn load_or_create(dir: &Path, sans: &[String]) -> Result<Pki, TlsError> {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let ca_cert_path = dir.join("ca.crt");
        let ca_key_path = dir.join("ca.key");
        let (ca_pem, ca_key_pem) = if ca_cert_path.exists() && ca_key_path.exists() {
            (read(&ca_cert_path)?, read(&ca_key_path)?)
        } else {
            let key = KeyPair::generate().map_err(cert_err("CA key"))?;
            let mut params =
                CertificateParams::new(Vec::<String>::new()).map_err(cert_err("CA"))?;
            params.distinguished_name = dn("vkube-ca", None);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            set_validity(&mut params, 10);
            let cert = params.self_signed(&key).map_err(cert_err("CA"))?;
            let (c, k) = (cert.pem(), key.serialize_pem());
            write_secret(&ca_key_path, &k)?;
            write_secret(&ca_cert_path, &c)?;
            (c, k)
        };

        let mut pki = Pki {
            ca_pem,
            ca_key_pem,
            server_cert_pem: String::new(),
            server_key_pem: String::new(),
            admin_cert_pem: String::new(),
            admin_key_pem: String::new(),
        };

        let sans_path = dir.join("server.sans");
        let server_cert_path = dir.join("server.crt");
        let server_key_path = dir.join("server.key");
        let wanted_sans = sans.join("\n");
        let current_sans = std::fs::read_to_string(&sans_path).unwrap_or_default();
        if server_cert_path.exists() && server_key_path.exists() && current_sans == wanted_sans {
            pki.server_cert_pem = read(&server_cert_path)?;
            pki.server_key_pem = read(&server_key_path)?;
        } else {
            let issued = pki.issue("serving", "vkube-apiserver", &[], sans, true)?;
            write_secret(&server_key_path, &issued.key_pem)?;
            write_secret(&server_cert_path, &issued.cert_pem)?;
            write_secret(&sans_path, &wanted_sans)?;
            pki.server_cert_pem = issued.cert_pem;
            pki.server_key_pem = issued.key_pem;
        }

        let admin_cert_path = dir.join("admin.crt");
        let admin_key_path = dir.join("admin.key");
        if admin_cert_path.exists() && admin_key_path.exists() {
            pki.admin_cert_pem = read(&admin_cert_path)?;
            pki.admin_key_pem = read(&admin_key_path)?;
        } else {
            let issued = pki.issue_client("vkube-admin", &["system:masters".to_string()])?;
            write_secret(&admin_key_path, &issued.key_pem)?;
            write_secret(&admin_cert_path, &issued.cert_pem)?;
            pki.admin_cert_pem = issued.cert_pem;
            pki.admin_key_pem = issued.key_pem;
        }
        Ok(pki)
    }

    /// Issues a client certificate for `user` in `groups` (CN = user, O = groups), as
    /// kube-apiserver reads them.
    pub fn issue_client(
        &self,
        user: &str,
        groups: &[String],
    ) -> Result<IssuedClientCert, TlsError> {
        self.issue("client", user, groups, &[], false)
    }

    fn issue(
        &self,
        what: &'static str,
        common_name: &str,
        orgs: &[String],
        sans: &[String],
        server: bool,
    ) -> Result<IssuedClientCert, TlsError> {
        let ca_key = KeyPair::from_pem(&self.ca_key_pem).map_err(cert_err("CA key"))?;
        let issuer = Issuer::from_ca_cert_pem(&self.ca_pem, ca_key).map_err(cert_err("CA"))?;
        let key = KeyPair::generate().map_err(cert_err(what))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err(what))?;
        params.distinguished_name = dn(common_name, None);
        // rcgen keeps one value per attribute type; the second group goes in an attribute
        // spelled by O's OID (2.5.4.10), which encodes as a second O.
        match orgs {
            [] => {}
            [one] => params
                .distinguished_name
                .push(DnType::OrganizationName, one.as_str()),
            [one, two] => {
                params
                    .distinguished_name
                    .push(DnType::OrganizationName, one.as_str());
                params
                    .distinguished_name
                    .push(DnType::CustomDnType(vec![2, 5, 4, 10]), two.as_str());
            }
            _ => {
                return Err(TlsError::Cert {
                    what,
                    message: format!(
                        "at most two groups fit in a client certificate, got {}",
                        orgs.len()
                    ),
                });
            }
        }
        params.subject_alt_names = sans
            .iter()
            .map(|s| match s.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => s
                    .as_str()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(cert_err(what)),
            })
            .collect::<Result<_, _>>()?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        set_validity(&mut params, if server { 5 } else { 2 });
        let cert = params.signed_by(&key, &issuer).map_err(cert_err(what))?;
        Ok(IssuedClientCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The rustls server configuration: the serving certificate, HTTP/2 and HTTP/1.1 by ALPN,
    /// client certificates verified against the CA but optional (bearer tokens work too).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut roots = RootCertStore::empty();
        for cert in pem_certs(&self.ca_pem)? {
            roots
                .add(cert)
                .map_err(|e| TlsError::Rustls(format!("CA certificate: {e}")))?;
        }
        let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes())
            .map_err(|e| TlsError::Rustls(format!("serving key: {e}")))?;
        let mut config = rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(pem_certs(&self.server_cert_pem)?, key)
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The user and groups a verified client certificate stands for (CN and O), as
/// kube-apiserver's x509 authenticator reads them.
pub fn identity_from_cert(der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let user = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    Some((user, groups))
}

/// Loads an existing PKI (without creating anything), for issuing client certificates.
pub fn load_existing(dir: &Path) -> Result<Pki, TlsError> {
    Ok(Pki {
        ca_pem: read(&dir.join("ca.crt"))?,
        ca_key_pem: read(&dir.join("ca.key"))?,
        server_cert_pem: String::new(),
        server_key_pem: String::new(),
        admin_cert_pem: String::new(),
        admin_key_pem: String::new(),
    })
}

/// The text of a kubeconfig for `server` with a client certificate.
pub fn kubeconfig_text(
    server: &str,
    ca_pem: &str,
    user: &str,
    cert_pem: &str,
    key_pem: &str,
) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: vkube\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\ncontexts:\n- name: vkube\n  context:\n    cluster: vkube\n    user: {user}\ncurrent-context: vkube\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n",
        ca = b64(ca_pem),
        cert = b64(cert_pem),
        key = b64(key_pem),
    )
}

/// Writes a kubeconfig for `server` (an https URL) with a client certificate, atomically and
/// readable only by its owner.
pub fn write_kubeconfig(
    path: &Path,
    server: &str,
    ca_pem: &str,
    user: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<(), TlsError> {
    write_secret(
        path,
        &kubeconfig_text(server, ca_pem, user, cert_pem, key_pem),
    )
}

fn pem_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Rustls(format!("certificate PEM: {e}")))
}

fn dn(cn: &str, org: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(o) = org {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}

fn set_validity(params: &mut CertificateParams, years: i16) {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    params.not_after = rcgen::date_time_ymd(
        i32::from(today.year() + years),
        today.month().unsigned_abs(),
        today.day().unsigned_abs().min(28),
    );
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `text` to `path` atomically (temp file, fsync, rename) with mode 0600.
pub fn write_secret(path: &Path, text: &str) -> Result<(), TlsError> {
    let io = |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let a = Pki::load_or_create(dir.path(), &sans).expect("create");
        let b = Pki::load_or_create(dir.path(), &sans).expect("reload");
        assert_eq!(a.ca_pem, b.ca_pem);
        assert_eq!(a.server_cert_pem, b.server_cert_pem);
        assert_eq!(a.admin_cert_pem, b.admin_cert_pem);
        let c = Pki::load_or_create(dir.path(), &["other.example".to_string()]).expect("new SANs");
        assert_eq!(a.ca_pem, c.ca_pem, "the CA survives a SAN change");
        assert_ne!(
            a.server_cert_pem, c.server_cert_pem,
            "the serving cert is reissued"
        );
        c.server_config().expect("rustls accepts the material");
    }

    #[test]
    fn client_identity_is_cn_and_orgs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(dir.path(), &["localhost".to_string()]).expect("create");
        let issued = pki
            .issue_client("alice", &["dev".to_string(), "ops".to_string()])
            .expect("issue");
        let der = pem_certs(&issued.cert_pem).expect("pem").remove(0);
        let (user, groups) = identity_from_cert(&der).expect("parse");
        assert_eq!(user, "alice");
        assert_eq!(groups, vec!["dev".to_string(), "ops".to_string()]);
        let admin = pem_certs(&pki.admin_cert_pem).expect("pem").remove(0);
        assert_eq!(
            identity_from_cert(&admin).expect("admin").1,
            vec!["system:masters".to_string()]
        );
    }
}
