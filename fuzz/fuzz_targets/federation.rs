//! OpenID Federation: entity statements and trust-chain resolution over an in-memory fetcher,
//! structure-aware. The honest federation is RP → SA → TA (`spid_fuzz::federation_docs`);
//! for each published document the fuzzer keeps it, drops it, replaces it with its own bytes,
//! or edits its claims (members from a small vocabulary set to small JSON values, or removed)
//! and re-signs it with a key of its choice; it also chooses the trust-mark status answer.
//! The same documents are then handed to `validate_trust_chain` as an explicit chain.
//! Properties: nothing panics; a resolved chain ends at the anchor, starts at the entity
//! asked for, and is never longer than the limits allow; when every document was signed by
//! its honest signer the chain's keys are the honest ones.
#![no_main]
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use spid_core::oidc::federation::{
    decode_entity_statement_unverified, resolve_trust_chain, validate_trust_chain,
    verify_entity_configuration, Intermediates, MAX_INTERMEDIATES,
};
use spid_core::oidc::Profile;
use spid_fuzz::*;

const MEMBERS: &[&str] = &[
    "iss",
    "sub",
    "iat",
    "exp",
    "jwks",
    "authority_hints",
    "metadata",
    "metadata_policy",
    "constraints",
    "trust_marks",
    "crit",
    "source_endpoint",
];

#[derive(Debug, Arbitrary)]
enum Small {
    Null,
    Bool(bool),
    Int(i64),
    Near(i16),
    Str(String),
    Entity(u8),
    List(Vec<u8>),
    Policy {
        op: u8,
        value: u8,
    },
    Constraints {
        max_path: Option<u8>,
        leaf_types: Option<u8>,
    },
    Empty,
}

const ENTITIES: &[&str] = &[
    TA,
    SA,
    RP,
    "https://evil.example.it",
    "",
    "https://ta.example.it/",
];
const OPS: &[&str] = &[
    "value",
    "add",
    "default",
    "one_of",
    "subset_of",
    "superset_of",
    "essential",
];
const TYPES: &[&str] = &[
    "openid_relying_party",
    "openid_provider",
    "federation_entity",
];

impl Small {
    fn json(&self) -> Value {
        match self {
            Small::Null => Value::Null,
            Small::Bool(b) => json!(b),
            Small::Int(i) => json!(i),
            Small::Near(d) => json!(T0 + *d as i64),
            Small::Str(s) => json!(s),
            Small::Entity(i) => json!(ENTITIES[*i as usize % ENTITIES.len()]),
            Small::List(v) => Value::Array(
                v.iter()
                    .take(6)
                    .map(|i| json!(ENTITIES[*i as usize % ENTITIES.len()]))
                    .collect(),
            ),
            Small::Policy { op, value } => {
                let op = OPS[*op as usize % OPS.len()];
                let v = match value % 4 {
                    0 => json!(["authorization_code"]),
                    1 => json!("private_key_jwt"),
                    2 => json!(true),
                    _ => json!(["x", "authorization_code", "refresh_token"]),
                };
                json!({"openid_relying_party": {"grant_types": {op: v}, "client_name": {op: v}}})
            }
            Small::Constraints {
                max_path,
                leaf_types,
            } => {
                let mut c = serde_json::Map::new();
                if let Some(m) = max_path {
                    c.insert("max_path_length".into(), json!(m));
                }
                if let Some(t) = leaf_types {
                    c.insert(
                        "allowed_leaf_entity_types".into(),
                        json!([TYPES[*t as usize % TYPES.len()]]),
                    );
                }
                Value::Object(c)
            }
            Small::Empty => json!({}),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum ClaimEdit {
    Set {
        member: u8,
        value: Small,
    },
    Remove {
        member: u8,
    },
    /// Another document's keys (a key substitution).
    Jwks {
        from: u8,
    },
}

#[derive(Debug, Arbitrary)]
enum Doc {
    Honest,
    Missing,
    Raw(String),
    Edited {
        edits: Vec<ClaimEdit>,
        signer: Option<u8>,
    },
}

#[derive(Debug, Arbitrary)]
struct Case {
    docs: [Doc; 5],
    status: u8,
    intermediates: bool,
    chain_order: Vec<u8>,
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(case) = Case::arbitrary(&mut u) else {
        return;
    };
    let honest_docs = federation_docs();
    let honest_signed = federation_signed();
    let mut net = Net {
        docs: Default::default(),
        status: match case.status % 4 {
            0 => json!({"active": true}).to_string(),
            1 => json!({"active": false}).to_string(),
            2 => "{".into(),
            _ => json!({"active": "true"}).to_string(),
        },
    };
    let mut all_honest_signers = true;
    let mut tokens = Vec::new();
    for (i, doc) in case.docs.iter().enumerate() {
        let token = match doc {
            Doc::Honest => Some(honest_signed[i].clone()),
            Doc::Missing => None,
            Doc::Raw(s) => Some(s.clone()),
            Doc::Edited { edits, signer } => {
                if edits.len() > 6 {
                    return;
                }
                let mut claims = honest_docs[i].claims.clone();
                let Some(obj) = claims.as_object_mut() else {
                    return;
                };
                for e in edits {
                    match e {
                        ClaimEdit::Set { member, value } => {
                            obj.insert(
                                MEMBERS[*member as usize % MEMBERS.len()].into(),
                                value.json(),
                            );
                        }
                        ClaimEdit::Remove { member } => {
                            obj.remove(MEMBERS[*member as usize % MEMBERS.len()]);
                        }
                        ClaimEdit::Jwks { from } => {
                            let other = &honest_docs[*from as usize % honest_docs.len()].claims;
                            obj.insert("jwks".into(), other["jwks"].clone());
                        }
                    }
                }
                let key = signer.map_or(honest_docs[i].signer, |k| k as usize % 3);
                all_honest_signers &= key == honest_docs[i].signer;
                sign_claims(&claims, key)
            }
        };
        if let Some(t) = token {
            let _ = decode_entity_statement_unverified(&t);
            let _ = verify_entity_configuration(&t, &Profile::rules_2023(), fed_now());
            net.docs.insert(honest_docs[i].url.clone(), t.clone());
            tokens.push(t);
        }
    }
    let profile = Profile::rules_2023();
    let anchor = anchor();
    let mode = if case.intermediates {
        Intermediates::Allowed
    } else {
        Intermediates::Forbidden
    };
    if let Ok(chain) = block_on(resolve_trust_chain(
        &net,
        RP,
        &anchor,
        &profile,
        fed_now(),
        mode,
    )) {
        assert_eq!(chain.trust_anchor, TA);
        assert_eq!(chain.subject.trim_end_matches('/'), RP);
        assert!(
            chain.statements.len() as u64 <= MAX_INTERMEDIATES + 3,
            "{}",
            chain.statements.len()
        );
        if !case.intermediates {
            assert!(
                chain.statements.len() <= 3,
                "an intermediate under Forbidden"
            );
        }
        if all_honest_signers && case.docs.iter().all(|d| !matches!(d, Doc::Raw(_))) {
            let leaf = &chain.statements[0];
            assert_eq!(
                leaf.jwks,
                fed_jwks(2),
                "the leaf's keys are not the honest ones"
            );
        }
    }
    // The same documents as an explicit chain, in a fuzzer-chosen order.
    let chain: Vec<&String> = if case.chain_order.is_empty() || tokens.is_empty() {
        tokens.iter().collect()
    } else {
        case.chain_order
            .iter()
            .take(7)
            .map(|i| &tokens[*i as usize % tokens.len()])
            .collect()
    };
    if let Ok(c) = validate_trust_chain(&chain, &anchor, &profile, fed_now()) {
        assert_eq!(c.trust_anchor, TA);
    }
});
