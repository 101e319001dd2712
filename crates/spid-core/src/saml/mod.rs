//! SAML for SPID: a strict XML tree, bindings, XML signatures, metadata, and the message models
//! (AuthnRequest, Response) both sides build and read.

pub mod authn_request;
pub mod binding;
mod c14n;
pub mod dsig;
pub mod inbound;
pub mod logout;
pub mod metadata;
pub mod ns;
pub mod response;
pub mod xml;

/// A fresh message ID: `_` + a random (v4) UUID, an NCName as SAML IDs must be. The 122 random
/// bits come from rand's thread-local generator (ChaCha, seeded by the OS), not from a
/// `getrandom` system call per ID as `Uuid::new_v4` makes them: several IDs a login.
pub fn new_id() -> String {
    format!(
        "_{}",
        uuid::Builder::from_random_bytes(rand::random()).into_uuid()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_random_v4_uuids_behind_an_underscore() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| super::new_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            let u = uuid::Uuid::parse_str(id.strip_prefix('_').expect("leading _")).unwrap();
            assert_eq!(u.get_version(), Some(uuid::Version::Random));
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
        }
    }
}
