//! Authentication: verified client certificates (user = CN, groups = O) and static bearer
//! tokens from the config, then ServiceAccount tokens (see `tokens`). Anything else
//! presented is 401; nothing presented is anonymous.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use axum_server::tls::TlsInfo;

use super::error::ApiError;
use crate::config::StaticToken;

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User name.
    pub user: String,
    /// Groups, `system:authenticated` included.
    pub groups: Vec<String>,
}

impl Identity {
    /// An identity; `system:authenticated` is added to the groups.
    pub fn new(user: String, mut groups: Vec<String>) -> Identity {
        if !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".into());
        }
        Identity { user, groups }
    }
}

/// Verified client certificates remembered (their identity), at most this many.
const CERT_CACHE: usize = 1024;

/// The authenticator.
pub struct Authenticator {
    tokens: HashMap<String, Identity>,
    /// Identity by certificate DER: parsing X.509 on every request costs more than the
    /// rest of a GET.
    certs: std::sync::Mutex<HashMap<Vec<u8>, Identity>>,
}

impl Authenticator {
    /// From the config's static tokens.
    pub fn new(tokens: &[StaticToken]) -> Authenticator {
        Authenticator {
            tokens: tokens
                .iter()
                .map(|t| {
                    (
                        t.token.clone(),
                        Identity::new(t.user.clone(), t.groups.clone()),
                    )
                })
                .collect(),
            certs: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn certificate_identity(&self, der: &[u8]) -> Option<Identity> {
        let mut certs = self
            .certs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(id) = certs.get(der) {
            return Some(id.clone());
        }
        let (user, groups) = crate::tls::identity_from_cert(der)?;
        let id = Identity::new(user, groups);
        if certs.len() >= CERT_CACHE {
            certs.clear();
        }
        certs.insert(der.to_vec(), id.clone());
        Some(id)
    }

    /// The caller's identity: a verified client certificate wins, then a bearer token.
    /// `Ok(None)` = no credentials; a bad token is 401.
    /// `other_tokens` resolves bearer tokens that are not static (ServiceAccount tokens).
    pub fn authenticate(
        &self,
        tls: Option<&TlsInfo>,
        headers: &HeaderMap,
        other_tokens: impl FnOnce(&str) -> Option<Identity>,
    ) -> Result<Option<Identity>, ApiError> {
        if let Some(info) = tls
            && let Some(leaf) = info.peer_certificates.first()
        {
            // rustls has verified the chain against the cluster CA during the handshake.
            return self
                .certificate_identity(leaf.as_ref())
                .map(Some)
                .ok_or(ApiError::Unauthorized);
        }
        match headers.get(header::AUTHORIZATION) {
            None => Ok(None),
            Some(value) => {
                let text = value.to_str().map_err(|_| ApiError::Unauthorized)?;
                let token = text
                    .strip_prefix("Bearer ")
                    .or_else(|| text.strip_prefix("bearer "))
                    .map(str::trim)
                    .ok_or(ApiError::Unauthorized)?;
                self.tokens
                    .get(token)
                    .cloned()
                    .or_else(|| other_tokens(token))
                    .map(Some)
                    .ok_or(ApiError::Unauthorized)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_map_to_identities() {
        let auth = Authenticator::new(&[StaticToken {
            token: "0123456789abcdef".into(),
            user: "alice".into(),
            groups: vec!["dev".into()],
        }]);
        let mut h = HeaderMap::new();
        assert_eq!(
            auth.authenticate(None, &h, |_| None).expect("anonymous"),
            None
        );
        h.insert(
            header::AUTHORIZATION,
            "Bearer 0123456789abcdef".parse().expect("hv"),
        );
        let id = auth
            .authenticate(None, &h, |_| None)
            .expect("ok")
            .expect("identity");
        assert_eq!(id.user, "alice");
        assert_eq!(
            id.groups,
            vec!["dev".to_string(), "system:authenticated".to_string()]
        );
        h.insert(header::AUTHORIZATION, "Bearer wrong".parse().expect("hv"));
        assert!(matches!(
            auth.authenticate(None, &h, |_| None),
            Err(ApiError::Unauthorized)
        ));
    }
}
