//! josekit handles built from public JWKs, kept: josekit builds a verifier or an encrypter only
//! by encoding the key and decoding it again through OpenSSL 3's decoder framework, several
//! times the cost of the RSA operation it then does, and a run meets a few dozen keys.

use super::Jwk;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// At most this many handles of one kind; full, the map starts over, so a peer publishing many
/// keys only costs rebuilds.
const MAX: usize = 256;

/// The map: by algorithm name and the JWK's whole JSON, every member josekit reads to build a
/// handle, so an entry is exactly what a fresh build would give.
type Map<V> = HashMap<(&'static str, String), Arc<V>>;

/// Handles of one kind (`dyn JwsVerifier`, `dyn JweEncrypter`).
pub(crate) struct Kept<V: ?Sized>(LazyLock<Mutex<Map<V>>>);

impl<V: ?Sized> Kept<V> {
    /// An empty set.
    pub(crate) const fn new() -> Kept<V> {
        Kept(LazyLock::new(Mutex::default as fn() -> Mutex<Map<V>>))
    }

    /// The handle for `alg` and `jwk`, kept, or built by `build` and kept.
    pub(crate) fn get<E>(
        &self,
        alg: &'static str,
        jwk: &Jwk,
        build: impl FnOnce() -> Result<Box<V>, E>,
    ) -> Result<Arc<V>, E> {
        // A JWK that does not serialise (it always does) is built and not kept.
        let Ok(json) = serde_json::to_string(jwk) else {
            return build().map(Arc::from);
        };
        let key = (alg, json);
        let lock = || self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = lock().get(&key) {
            return Ok(v.clone());
        }
        let built: Arc<V> = build()?.into();
        let mut map = lock();
        if map.len() >= MAX {
            map.clear();
        }
        map.insert(key, built.clone());
        Ok(built)
    }
}
