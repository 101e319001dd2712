//! The malformed AuthnRequests (`request.*`, `request.cie.*`) and the refusal each must get.

use super::*;

fn response_status(p: &Page) -> Option<(String, Option<String>, String)> {
    let f = p.form_with_field("SAMLResponse")?;
    let x = binding::decode_post(f.field("SAMLResponse")?, binding::MAX_MESSAGE_BYTES).ok()?;
    let r = xml::parse(&x, &Limits::default()).ok()?;
    let st = r.child(ns::SAMLP, "Status")?;
    let code = st.child(ns::SAMLP, "StatusCode")?;
    Some((
        code.attr("Value")?.to_string(),
        code.child(ns::SAMLP, "StatusCode")
            .and_then(|c| c.attr("Value"))
            .map(str::to_string),
        st.child(ns::SAMLP, "StatusMessage")
            .map(|m| m.text().trim().to_string())
            .unwrap_or_default(),
    ))
}

/// The IdP's SSO locations and entityID, for the probes' edits.
struct Sso<'a> {
    /// The HTTP-Redirect SSO location (where the probes go).
    redirect: &'a str,
    /// The entityID.
    entity_id: &'a str,
}

/// One malformed (or, for `request.cie.honest`, honest) AuthnRequest and the refusal it
/// must get: SPID/CIE error `nr` on the channel [`SpidError::channel`] gives it (an error
/// page, or an error Response with its status, sub-status and `ErrorCode nrNN`); `nr` 0: no
/// refusal, the login pages.
pub(super) struct Probe {
    pub(super) id: &'static str,
    nr: u8,
    edit: fn(&mut AuthnRequest, &Sso<'_>),
    /// A `samlp:Scoping` with a `samlp:RequesterID` appended to the request.
    scoping: bool,
    signed: bool,
}

const fn probe(id: &'static str, nr: u8, edit: fn(&mut AuthnRequest, &Sso<'_>)) -> Probe {
    Probe {
        id,
        nr,
        edit,
        scoping: false,
        signed: true,
    }
}

/// The probes of `profile`: SPID's malformed requests, or the CIE ones (on top of a CIE-shaped
/// request: Destination the Redirect SSO location, ForceAuthn, no IsPassive, Comparison
/// minimum, ACS and attribute service by index).
pub(super) fn probes(profile: IdpProfile) -> Vec<Probe> {
    match profile {
        IdpProfile::Spid => vec![
            Probe {
                signed: false,
                ..probe("request.unsigned.nr4", 4, |_, _| {})
            },
            probe("request.version.nr9", 9, |r, _| {
                r.version = Some("1.0".into())
            }),
            probe("request.id-missing.nr11", 11, |r, _| r.id = None),
            probe("request.authn-context-legacy.nr12", 12, |r, _| {
                r.class_refs = vec!["urn:oasis:names:tc:SAML:2.0:ac:classes:SpidL2".into()]
            }),
            probe("request.issue-instant-old.nr13", 13, |r, _| {
                r.issue_instant = Some("2020-01-01T00:00:00Z".into())
            }),
            probe("request.destination-other.nr14", 14, |r, _| {
                r.destination = Some("https://other-idp.example/sso".into())
            }),
            probe("request.is-passive.nr15", 15, |r, _| {
                r.is_passive = Some("true".into())
            }),
            probe("request.acs-index-unknown.nr16", 16, |r, _| {
                r.acs_index = Some("7".into())
            }),
            probe("request.name-id-policy.nr17", 17, |r, _| {
                r.name_id_policy_format =
                    Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into())
            }),
            probe("request.attribute-index-unknown.nr18", 18, |r, _| {
                r.attribute_index = Some("9".into())
            }),
        ],
        IdpProfile::Cie => vec![
            probe("request.cie.honest", 0, |_, _| {}),
            Probe {
                signed: false,
                ..probe("request.cie.unsigned.nr4", 4, |_, _| {})
            },
            probe("request.cie.version.nr9", 9, |r, _| {
                r.version = Some("1.0".into())
            }),
            probe("request.cie.id-missing.nr11", 11, |r, _| r.id = None),
            probe("request.cie.authn-context-legacy.nr12", 12, |r, _| {
                r.class_refs = vec!["urn:oasis:names:tc:SAML:2.0:ac:classes:SpidL2".into()]
            }),
            probe("request.cie.comparison-better.nr12", 12, |r, _| {
                r.comparison = Some("better".into())
            }),
            probe("request.cie.comparison-maximum.nr12", 12, |r, _| {
                r.comparison = Some("maximum".into())
            }),
            probe("request.cie.issue-instant-old.nr13", 13, |r, _| {
                r.issue_instant = Some("2020-01-01T00:00:00Z".into())
            }),
            probe("request.cie.destination-entity-id.nr14", 14, |r, s| {
                r.destination = Some(s.entity_id.into())
            }),
            probe("request.cie.destination-other.nr14", 14, |r, _| {
                r.destination =
                    Some("https://other-idp.example/idp/profile/SAML2/Redirect/SSO".into())
            }),
            probe("request.cie.is-passive-true.nr15", 15, |r, _| {
                r.is_passive = Some("true".into())
            }),
            probe("request.cie.is-passive-false.nr15", 15, |r, _| {
                r.is_passive = Some("false".into())
            }),
            probe("request.cie.force-authn-false.nr8", 8, |r, _| {
                r.force_authn = Some("false".into())
            }),
            probe("request.cie.force-authn-absent.nr8", 8, |r, _| {
                r.force_authn = None
            }),
            Probe {
                scoping: true,
                ..probe("request.cie.scoping.nr8", 8, |_, _| {})
            },
            probe("request.cie.acs-index-unknown.nr16", 16, |r, _| {
                r.acs_index = Some("7".into())
            }),
            probe("request.cie.name-id-policy.nr17", 17, |r, _| {
                r.name_id_policy_format =
                    Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into())
            }),
            probe("request.cie.attribute-index-unknown.nr18", 18, |r, _| {
                r.attribute_index = Some("9".into())
            }),
        ],
    }
}

/// Judges the page an AuthnRequest got against `nr`: (pass, what happened).
fn judge_refusal(page: &Page, nr: u8) -> (bool, String) {
    let resp = response_status(page);
    let resp_text = |r: &Option<(String, Option<String>, String)>| match r {
        None => "no error Response".to_string(),
        Some((c, s, m)) => format!("Response {c} {} {}", shown(s.as_deref()), shown(Some(m))),
    };
    if nr == 0 {
        // Honest: not refused — the login pages, or (an IdP without pages) a Success Response.
        let form = page.body.contains("type=\"password\"");
        let success = resp
            .as_ref()
            .is_some_and(|(c, _, _)| c == ns::STATUS_SUCCESS);
        let ok = page.status == 200 && (form && resp.is_none() || success);
        return (
            ok,
            format!(
                "HTTP {}, {}, {}",
                page.status,
                if form {
                    "a login form"
                } else {
                    "no login form"
                },
                resp_text(&resp)
            ),
        );
    }
    match SpidError(nr).channel() {
        spid_core::errors::ErrorChannel::UserPage { .. } => {
            let refused =
                page.status >= 400 && resp.is_none() && !page.body.contains("type=\"password\"");
            (
                refused && page.body.contains(&format!("nr{nr}")),
                format!("HTTP {} page, {}", page.status, resp_text(&resp)),
            )
        }
        spid_core::errors::ErrorChannel::Response { status, sub_status } => match resp {
            Some((c, s, m)) => (
                c == status && s.as_deref() == sub_status && m == format!("ErrorCode nr{nr}"),
                format!("{c} {} {}", shown(s.as_deref()), shown(Some(m))),
            ),
            None => (false, format!("no error Response (HTTP {})", page.status)),
        },
    }
}

pub(super) async fn malformed_checks(
    profile: IdpProfile,
    select: &Selection,
    idp: &EntityMetadata,
    sp_entity: &str,
    sp_cred: &Credential,
    out: &mut Vec<CheckResult>,
) -> anyhow::Result<()> {
    let Some(sso) = idp
        .idp
        .as_ref()
        .and_then(|d| d.sso_for(ns::BINDING_REDIRECT))
        .map(str::to_string)
    else {
        check(
            out,
            "request.redirect-endpoint",
            false,
            "no HTTP-Redirect SSO endpoint",
        );
        return Ok(());
    };
    let sso_url = Url::parse(&sso).map_err(|e| {
        anyhow::anyhow!("the IdP metadata's HTTP-Redirect SSO location {sso} is not a URL: {e}")
    })?;
    let at = Sso {
        redirect: &sso,
        entity_id: &idp.entity_id,
    };
    for p in probes(profile).into_iter().filter(|p| select.keeps(p.id)) {
        let mut r = AuthnRequest::spid(
            sp_entity,
            at.redirect,
            spid_core::clock::now(),
            SpidLevel::L2,
            Comparison::Minimum,
            0,
            0,
        );
        if profile == IdpProfile::Cie {
            r.force_authn = Some("true".into());
        }
        (p.edit)(&mut r, &at);
        let mut el = r.to_element();
        if p.scoping {
            el = el.with_child(
                Element::new("samlp:Scoping", Some(ns::SAMLP)).with_child(
                    Element::new("samlp:RequesterID", Some(ns::SAMLP))
                        .with_text("https://other-sp.example/metadata"),
                ),
            );
        }
        let signing = p.signed.then_some((&sp_cred.key, SigAlg::RsaSha256));
        let url = binding::encode_redirect(
            &sso_url,
            MessageParam::SamlRequest,
            &el.to_xml(),
            Some("check-idp"),
            signing,
        )?;
        let mut ua = runner::user_agent()?;
        let (pass, detail) = match ua.get(&url).await {
            Ok(page) => judge_refusal(&page, p.nr),
            Err(e) => (false, format!("no answer: {e}")),
        };
        check(out, p.id, pass, detail);
    }
    Ok(())
}
