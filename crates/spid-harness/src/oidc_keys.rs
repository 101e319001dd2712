//! The fixed TEST-ONLY OIDC keys in `certs/oidc/` (embedded), so that a run does not spend
//! seconds of CPU generating RSA keys at start-up (issue 15). **Their private keys are
//! committed, hence public: test use only.** Each role has its own key: no published key equals
//! a foreign (fault-only) one. Second instances started in one test (intermediates, further
//! relying parties) keep generating fresh keys, so that instances never share one.
//! `spid-harness certs --out certs` regenerates them ([`generate`]).

use std::path::Path;

use anyhow::Context;
use spid_core::oidc::jose::{DecryptionKey, JoseError, SigningKey};
use spid_idp::oidc::op::OpKeys;
use spid_sp::oidc::RpKeys;

use crate::oidc_op::ProbeKeys;

/// The key files' base names in `certs/oidc/` (`<name>.key.pem`), one per role.
pub const NAMES: [&str; 11] = [
    "ta",
    "op-federation",
    "op-signing",
    "op-foreign",
    "rp-federation",
    "rp-signing",
    "rp-encryption",
    "probe-federation",
    "probe-signing",
    "probe-foreign",
    "probe-encryption",
];

macro_rules! pem {
    ($name:literal) => {
        include_bytes!(concat!("../../../certs/oidc/", $name, ".key.pem"))
    };
}

/// The trust anchor's federation key.
pub fn ta() -> Result<SigningKey, JoseError> {
    SigningKey::from_pem(pem!("ta"))
}

/// Our OP's keys.
pub fn op() -> Result<OpKeys, JoseError> {
    Ok(OpKeys {
        federation: SigningKey::from_pem(pem!("op-federation"))?,
        signing: SigningKey::from_pem(pem!("op-signing"))?,
        foreign: SigningKey::from_pem(pem!("op-foreign"))?,
    })
}

/// Our RP's keys.
pub fn rp() -> Result<RpKeys, JoseError> {
    Ok(RpKeys {
        federation: SigningKey::from_pem(pem!("rp-federation"))?,
        signing: SigningKey::from_pem(pem!("rp-signing"))?,
        encryption: DecryptionKey::from_pem(pem!("rp-encryption"))?,
    })
}

/// The probe RP's keys (`check-op`, the OP side).
pub fn probe() -> Result<ProbeKeys, JoseError> {
    Ok(ProbeKeys {
        federation: SigningKey::from_pem(pem!("probe-federation"))?,
        signing: SigningKey::from_pem(pem!("probe-signing"))?,
        foreign: SigningKey::from_pem(pem!("probe-foreign"))?,
        encryption: DecryptionKey::from_pem(pem!("probe-encryption"))?,
    })
}

/// Writes a fresh RSA 2048 key (unencrypted PKCS#8 PEM) for every name of [`NAMES`] into `dir`
/// (`certs/oidc`), overwriting. The harness embeds these files at build time: rebuild after.
pub fn generate(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for name in NAMES {
        let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048)?)?;
        let path = dir.join(format!("{name}.key.pem"));
        std::fs::write(&path, key.private_key_to_pem_pkcs8()?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_its_own_key() {
        let mut kids = vec![ta().unwrap().kid().to_string()];
        let op = op().unwrap();
        let rp = rp().unwrap();
        let probe = probe().unwrap();
        for k in [&op.federation, &op.signing, &op.foreign] {
            kids.push(k.kid().to_string());
        }
        for k in [
            &rp.federation,
            &rp.signing,
            &probe.federation,
            &probe.signing,
            &probe.foreign,
        ] {
            kids.push(k.kid().to_string());
        }
        for k in [&rp.encryption, &probe.encryption] {
            kids.push(k.kid().to_string());
        }
        let n = kids.len();
        kids.sort();
        kids.dedup();
        assert_eq!(kids.len(), n, "two roles share a key");
    }
}
