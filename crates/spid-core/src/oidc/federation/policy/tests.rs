use super::*;
use serde_json::json;

const SPID: PolicyDialect = PolicyDialect {
    one_of_on_arrays: true,
    empty_subset_is_error: true,
    bool_strings: true,
};
const OIDF: PolicyDialect = PolicyDialect {
    one_of_on_arrays: false,
    empty_subset_is_error: false,
    bool_strings: false,
};

fn md(rp: Value) -> Metadata {
    Metadata(
        json!({ "openid_relying_party": rp })
            .as_object()
            .cloned()
            .unwrap_or_default(),
    )
}

fn pol(rp: Value) -> MetadataPolicy {
    MetadataPolicy(
        json!({ "openid_relying_party": rp })
            .as_object()
            .cloned()
            .unwrap_or_default(),
    )
}

/// Applies one policy to RP metadata and returns the RP part.
fn apply(rp: Value, policy: Value, d: PolicyDialect) -> Result<Value, PolicyError> {
    let out = resolve_metadata(&md(rp), &[&pol(policy)], &[], d)?;
    Ok(Value::Object(
        out.openid_relying_party().cloned().unwrap_or_default(),
    ))
}

/// Merges TA and intermediate policies and returns the merged RP policy.
fn merge(ta: Value, int: Value, d: PolicyDialect) -> Result<Value, PolicyError> {
    let m = merge_policies(&[&pol(ta), &pol(int)], &[], d)?;
    Ok(m.0
        .get("openid_relying_party")
        .cloned()
        .unwrap_or(Value::Null))
}

#[test]
fn value_sets_overrides_and_removes() {
    let out = apply(
        json!({"a": 1, "b": "x"}),
        json!({"a": {"value": 2}, "b": {"value": null}, "c": {"value": ["z"]}}),
        SPID,
    );
    assert_eq!(out, Ok(json!({"a": 2, "c": ["z"]})));
}

#[test]
fn add_unions_or_creates() {
    let out = apply(
        json!({"contacts": ["a@x.it"]}),
        json!({"contacts": {"add": ["b@x.it", "a@x.it"]}, "new": {"add": "c"}}),
        SPID,
    );
    assert_eq!(
        out,
        Ok(json!({"contacts": ["a@x.it", "b@x.it"], "new": ["c"]}))
    );
    assert!(matches!(
        apply(json!({"s": "scalar"}), json!({"s": {"add": ["x"]}}), SPID),
        Err(PolicyError::Violation { op: "add", .. })
    ));
}

#[test]
fn default_fills_only_absent_parameters() {
    let out = apply(
        json!({"present": "mine"}),
        json!({"present": {"default": "theirs"}, "absent": {"default": "theirs"}}),
        SPID,
    );
    assert_eq!(out, Ok(json!({"present": "mine", "absent": "theirs"})));
}

#[test]
fn one_of_checks_scalars_and_arrays_per_dialect() {
    let p = json!({"m": {"one_of": ["private_key_jwt"]}});
    assert!(apply(json!({"m": "private_key_jwt"}), p.clone(), OIDF).is_ok());
    assert!(matches!(
        apply(json!({"m": "client_secret_basic"}), p.clone(), SPID),
        Err(PolicyError::Violation { op: "one_of", .. })
    ));
    // SPID TA examples use one_of on array parameters.
    assert_eq!(
        apply(json!({"m": ["private_key_jwt"]}), p.clone(), SPID),
        Ok(json!({"m": ["private_key_jwt"]}))
    );
    assert!(matches!(
        apply(json!({"m": ["private_key_jwt", "none"]}), p.clone(), SPID),
        Err(PolicyError::Violation { op: "one_of", .. })
    ));
    assert!(matches!(
        apply(json!({"m": ["private_key_jwt"]}), p.clone(), OIDF),
        Err(PolicyError::Violation { op: "one_of", .. })
    ));
    // Absent parameter: a check with nothing to check.
    assert_eq!(apply(json!({}), p, SPID), Ok(json!({})));
}

#[test]
fn subset_of_intersects_and_handles_empty_per_dialect() {
    let p = json!({"grant_types": {"subset_of": ["authorization_code", "refresh_token"]}});
    assert_eq!(
        apply(
            json!({"grant_types": ["implicit", "authorization_code"]}),
            p.clone(),
            SPID
        ),
        Ok(json!({"grant_types": ["authorization_code"]}))
    );
    assert!(matches!(
        apply(json!({"grant_types": ["implicit"]}), p.clone(), SPID),
        Err(PolicyError::Violation {
            op: "subset_of",
            ..
        })
    ));
    assert_eq!(
        apply(json!({"grant_types": ["implicit"]}), p.clone(), OIDF),
        Ok(json!({"grant_types": []}))
    );
    assert_eq!(apply(json!({}), p, OIDF), Ok(json!({})));
}

#[test]
fn superset_of_requires_every_value() {
    let p = json!({"scope": {"superset_of": ["openid"]}});
    assert!(apply(
        json!({"scope": ["openid", "offline_access"]}),
        p.clone(),
        SPID
    )
    .is_ok());
    assert!(matches!(
        apply(json!({"scope": ["offline_access"]}), p, SPID),
        Err(PolicyError::Violation {
            op: "superset_of",
            ..
        })
    ));
}

#[test]
fn essential_requires_presence_after_the_other_operators() {
    let p = json!({"client_name": {"essential": true}});
    assert_eq!(
        apply(json!({}), p.clone(), SPID),
        Err(PolicyError::EssentialMissing(
            "openid_relying_party.client_name".into()
        ))
    );
    assert!(apply(json!({"client_name": "RP"}), p, SPID).is_ok());
    // A default satisfies essential.
    let p = json!({"x": {"essential": true, "default": "d"}});
    assert_eq!(apply(json!({}), p, SPID), Ok(json!({"x": "d"})));
    let p = json!({"x": {"essential": false, "one_of": ["a"]}});
    assert_eq!(apply(json!({}), p, SPID), Ok(json!({})));
}

#[test]
fn bool_strings_match_booleans_only_in_the_spid_dialect() {
    let p = json!({"claims_parameter_supported": {"one_of": ["true"]}});
    assert!(apply(json!({"claims_parameter_supported": true}), p.clone(), SPID).is_ok());
    assert!(apply(json!({"claims_parameter_supported": true}), p, OIDF).is_err());
}

#[test]
fn merge_combines_operators() {
    let merged = merge(
        json!({
            "grant_types": {"subset_of": ["authorization_code", "refresh_token", "implicit"]},
            "contacts": {"add": ["ta@x.it"]},
            "scope": {"superset_of": ["openid"]},
            "alg": {"one_of": ["RS256", "RS512", "ES256"]},
            "name": {"essential": false},
        }),
        json!({
            "grant_types": {"subset_of": ["authorization_code", "refresh_token"]},
            "contacts": {"add": ["int@x.it", "ta@x.it"]},
            "scope": {"superset_of": ["offline_access"]},
            "alg": {"one_of": ["RS512", "RS256"]},
            "name": {"essential": true},
            "only_int": {"default": 5},
        }),
        SPID,
    )
    .expect("merge");
    assert_eq!(
        merged,
        json!({
            "grant_types": {"subset_of": ["authorization_code", "refresh_token"]},
            "contacts": {"add": ["ta@x.it", "int@x.it"]},
            "scope": {"superset_of": ["openid", "offline_access"]},
            "alg": {"one_of": ["RS256", "RS512"]},
            "name": {"essential": true},
            "only_int": {"default": 5},
        })
    );
}

#[test]
fn merge_refuses_conflicts() {
    let conflict = |ta: Value, int: Value| merge(json!({"p": ta}), json!({"p": int}), SPID);
    assert!(matches!(
        conflict(json!({"value": "a"}), json!({"value": "b"})),
        Err(PolicyError::Conflict { op: "value", .. })
    ));
    assert!(matches!(
        conflict(json!({"default": "a"}), json!({"default": "b"})),
        Err(PolicyError::Conflict { op: "default", .. })
    ));
    assert!(matches!(
        conflict(json!({"one_of": ["a"]}), json!({"one_of": ["b"]})),
        Err(PolicyError::Conflict { op: "one_of", .. })
    ));
    assert!(matches!(
        conflict(json!({"subset_of": ["a"]}), json!({"subset_of": ["b"]})),
        Err(PolicyError::Conflict {
            op: "subset_of",
            ..
        })
    ));
    // Same value at both levels is fine.
    assert!(conflict(json!({"value": "a"}), json!({"value": "a"})).is_ok());
    // Under the OIDF dialect an empty subset_of merge is allowed.
    assert!(merge(
        json!({"p": {"subset_of": ["a"]}}),
        json!({"p": {"subset_of": ["b"]}}),
        OIDF
    )
    .is_ok());
}

#[test]
fn refuses_illegal_operator_combinations() {
    let bad = |p: Value| {
        matches!(
            apply(json!({}), json!({"p": p}), SPID),
            Err(PolicyError::BadCombination { .. })
        )
    };
    assert!(bad(json!({"one_of": ["a"], "subset_of": ["a"]})));
    assert!(bad(json!({"value": "z", "one_of": ["a"]})));
    assert!(bad(json!({"value": ["a", "z"], "subset_of": ["a"]})));
    assert!(bad(json!({"value": ["a"], "superset_of": ["a", "b"]})));
    assert!(bad(json!({"subset_of": ["a"], "superset_of": ["a", "b"]})));
    assert!(bad(json!({"add": ["z"], "subset_of": ["a"]})));
    assert!(bad(json!({"value": null, "essential": true})));
    // Combinations that only become illegal after merging are caught too.
    assert!(matches!(
        merge(
            json!({"p": {"value": "z"}}),
            json!({"p": {"one_of": ["a"]}}),
            SPID
        ),
        Err(PolicyError::BadCombination { .. })
    ));
}

#[test]
fn refuses_bad_operands_and_shapes() {
    let r = |p: Value| apply(json!({"p": ["a"]}), json!({"p": p}), SPID);
    assert!(matches!(
        r(json!({"subset_of": "a"})),
        Err(PolicyError::BadOperand {
            op: "subset_of",
            ..
        })
    ));
    assert!(matches!(
        r(json!({"essential": "yes"})),
        Err(PolicyError::BadOperand {
            op: "essential",
            ..
        })
    ));
    assert!(matches!(
        r(json!({"one_of": []})),
        Err(PolicyError::BadOperand { op: "one_of", .. })
    ));
    assert!(matches!(
        r(json!({"default": null})),
        Err(PolicyError::BadOperand { op: "default", .. })
    ));
    assert!(matches!(
        r(json!("subset_of")),
        Err(PolicyError::NotAnObject(_))
    ));
    let not_obj = MetadataPolicy(
        json!({"openid_relying_party": 5})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    assert!(matches!(
        merge_policies(&[&not_obj], &[], SPID),
        Err(PolicyError::NotAnObject(_))
    ));
}

#[test]
fn unknown_operators_are_ignored_unless_critical() {
    let p = json!({"p": {"regexp": "^a", "subset_of": ["a"]}});
    assert_eq!(
        apply(json!({"p": ["a", "b"]}), p.clone(), SPID),
        Ok(json!({"p": ["a"]}))
    );
    let crit = vec!["regexp".to_string()];
    assert_eq!(
        resolve_metadata(&md(json!({"p": ["a"]})), &[&pol(p)], &crit, SPID),
        Err(PolicyError::UnsupportedCriticalOperator("regexp".into()))
    );
}

#[test]
fn spid_ta_example_policy_accepts_the_spid_rp_example() {
    // Shapes from the SPID rules' examples (EN 1.1 RP metadata, EN 7 TA policy for RPs).
    let rp = json!({
        "application_type": "web",
        "client_id": "https://rp.example.it/",
        "client_registration_types": ["automatic"],
        "client_name": "Name of an example organization",
        "contacts": ["ops@rp.example.it"],
        "grant_types": ["refresh_token", "authorization_code"],
        "redirect_uris": ["https://rp.example.it/oidc/rp/callback/"],
        "response_types": ["code"],
        "id_token_signed_response_alg": "RS256",
        "userinfo_signed_response_alg": "RS256",
        "userinfo_encrypted_response_alg": "RSA-OAEP",
        "userinfo_encrypted_response_enc": "A128CBC-HS256",
        "token_endpoint_auth_method": "private_key_jwt",
    });
    let ta = json!({
        "grant_types": {"subset_of": ["authorization_code", "refresh_token"]},
        "id_token_signed_response_alg": {"one_of": ["RS256", "RS512", "ES256", "ES512", "PS256", "PS512"]},
        "userinfo_signed_response_alg": {"one_of": ["RS256", "RS512", "ES256", "ES512", "PS256", "PS512"]},
        "userinfo_encrypted_response_alg": {"one_of": ["RSA-OAEP", "RSA-OAEP-256"]},
        "userinfo_encrypted_response_enc": {"one_of": ["A128CBC-HS256", "A256CBC-HS512"]},
        "token_endpoint_auth_method": {"one_of": ["private_key_jwt"]},
        "client_registration_types": {"one_of": ["automatic"]},
    });
    let out = apply(rp.clone(), ta.clone(), SPID).expect("SPID dialect accepts");
    assert_eq!(
        out["grant_types"],
        json!(["refresh_token", "authorization_code"])
    );
    // Strict OpenID Federation refuses one_of on the array `client_registration_types`.
    assert!(apply(rp, ta, OIDF).is_err());
}
