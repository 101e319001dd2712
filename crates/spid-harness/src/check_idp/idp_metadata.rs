//! The IdP metadata checks: SPID (`idp-metadata.*`) and the CIE shape (`idp-metadata.cie.*`).

use super::*;

/// The structure checks both profiles start with: acceptable XML, an EntityDescriptor, and
/// whether it has an IDPSSODescriptor; None when the metadata cannot be read further.
fn parsed_metadata(text: &str, out: &mut Vec<CheckResult>) -> Option<(Element, EntityMetadata)> {
    let limits = Limits {
        max_bytes: 1 << 20,
        ..Limits::default()
    };
    let Ok(root) = xml::parse(text, &limits) else {
        check(out, "idp-metadata.xml", false, "not acceptable XML");
        return None;
    };
    let m = match metadata::parse(text) {
        Ok(m) => m,
        Err(e) => {
            check(out, "idp-metadata.entity-descriptor", false, e.to_string());
            return None;
        }
    };
    let has_descriptor = root.child(ns::MD, "IDPSSODescriptor").is_some();
    check(
        out,
        "idp-metadata.idp-descriptor",
        has_descriptor,
        "IDPSSODescriptor",
    );
    Some((root, m))
}

/// Checks IdP metadata against the SPID IdP rules.
pub fn metadata_checks(text: &str) -> (Vec<CheckResult>, Option<EntityMetadata>) {
    let mut out = Vec::new();
    let Some((root, m)) = parsed_metadata(text, &mut out) else {
        return (out, None);
    };
    let d = root.child(ns::MD, "IDPSSODescriptor");
    check(
        &mut out,
        "idp-metadata.signing-certificate",
        !m.signing_certs.is_empty(),
        format!("{} certificate(s)", m.signing_certs.len()),
    );
    let signed = self_signed(text, &root, &m);
    check(
        &mut out,
        "idp-metadata.signed",
        signed,
        "enveloped signature over the EntityDescriptor",
    );
    if let Some(d) = d {
        check(
            &mut out,
            "idp-metadata.want-authn-requests-signed",
            d.attr("WantAuthnRequestsSigned") == Some("true"),
            shown(d.attr("WantAuthnRequestsSigned")),
        );
        let sso: Vec<&str> = d
            .children_named(ns::MD, "SingleSignOnService")
            .filter_map(|e| e.attr("Binding"))
            .collect();
        check(
            &mut out,
            "idp-metadata.sso-bindings",
            sso.contains(&ns::BINDING_REDIRECT) && sso.contains(&ns::BINDING_POST),
            list(&sso),
        );
        let slo = d.children_named(ns::MD, "SingleLogoutService").count();
        check(
            &mut out,
            "idp-metadata.single-logout",
            slo >= 1,
            format!("{slo} SingleLogoutService"),
        );
        let nameid = d
            .children_named(ns::MD, "NameIDFormat")
            .any(|n| n.text().trim() == ns::NAMEID_TRANSIENT);
        check(
            &mut out,
            "idp-metadata.name-id-format",
            nameid,
            "transient NameIDFormat",
        );
        let attrs: Vec<&str> = d
            .children_named(ns::SAML, "Attribute")
            .filter_map(|a| a.attr("Name"))
            .collect();
        check(
            &mut out,
            "idp-metadata.attributes",
            !attrs.is_empty() && attrs.iter().all(|a| attributes::is_spid_attribute(a)),
            format!("{} attributes", attrs.len()),
        );
    }
    (out, Some(m))
}

/// Checks IdP metadata against the CIE shape: the three shared structure checks, then the
/// entityID (the POST SSO location, `/idp/profile/SAML2/POST/SSO`, naming its environment),
/// both SSO bindings at the Shibboleth paths, the signing certificates (one or more: the
/// real IdP publishes two for rollover), a signature only if it verifies (the real metadata
/// is unsigned), `WantAuthnRequestsSigned` absent or true, NameIDFormat absent or transient.
pub fn cie_metadata_checks(text: &str) -> (Vec<CheckResult>, Option<EntityMetadata>) {
    let mut out = Vec::new();
    let Some((root, m)) = parsed_metadata(text, &mut out) else {
        return (out, None);
    };
    let d = root.child(ns::MD, "IDPSSODescriptor");
    let env = CieEnv::of_entity_id(&m.entity_id);
    check(
        &mut out,
        "idp-metadata.cie.entity-id",
        env.is_some(),
        match env {
            Some(e) => format!("{} ({e})", m.entity_id),
            None => format!("{} does not end in {}", m.entity_id, cie::SSO_POST_PATH),
        },
    );
    let Some(d) = d else {
        return (out, Some(m));
    };
    let protocols = d.attr("protocolSupportEnumeration").unwrap_or_default();
    check(
        &mut out,
        "idp-metadata.cie.protocol",
        protocols.split_whitespace().any(|p| p == ns::SAMLP),
        shown(d.attr("protocolSupportEnumeration")),
    );
    let sso: Vec<(&str, &str)> = d
        .children_named(ns::MD, "SingleSignOnService")
        .filter_map(|e| Some((e.attr("Binding")?, e.attr("Location")?)))
        .collect();
    let at = |b: &str| sso.iter().find(|(x, _)| *x == b).map(|(_, l)| *l);
    check(
        &mut out,
        "idp-metadata.cie.sso-bindings",
        at(ns::BINDING_REDIRECT).is_some() && at(ns::BINDING_POST).is_some(),
        list(sso.iter().map(|(b, _)| b)),
    );
    check(
        &mut out,
        "idp-metadata.cie.sso-post-is-entity-id",
        at(ns::BINDING_POST) == Some(m.entity_id.as_str()),
        format!("HTTP-POST SSO {}", shown(at(ns::BINDING_POST))),
    );
    let want_redirect = m
        .entity_id
        .strip_suffix(cie::SSO_POST_PATH)
        .map(|origin| format!("{origin}{}", cie::SSO_REDIRECT_PATH));
    check(
        &mut out,
        "idp-metadata.cie.sso-redirect-path",
        want_redirect.is_some() && at(ns::BINDING_REDIRECT) == want_redirect.as_deref(),
        format!(
            "HTTP-Redirect SSO {} (expected {})",
            shown(at(ns::BINDING_REDIRECT)),
            shown(want_redirect.as_deref())
        ),
    );
    let bad = m
        .signing_certs
        .iter()
        .filter(|der| openssl::x509::X509::from_der(der).is_err())
        .count();
    check(
        &mut out,
        "idp-metadata.cie.signing-certificate",
        !m.signing_certs.is_empty() && bad == 0,
        format!(
            "{} signing certificate(s), {bad} not X.509",
            m.signing_certs.len()
        ),
    );
    let has_sig = root.child(ns::DS, "Signature").is_some();
    let sig_ok = !has_sig || self_signed(text, &root, &m);
    check(
        &mut out,
        "idp-metadata.cie.signature",
        sig_ok,
        match (has_sig, sig_ok) {
            (false, _) => "unsigned (as the real CIE metadata)",
            (true, true) => "signed, verifies with its own certificate",
            (true, false) => "signed, but the signature does not verify",
        },
    );
    let want = d.attr("WantAuthnRequestsSigned");
    check(
        &mut out,
        "idp-metadata.cie.want-authn-requests-signed",
        matches!(want, None | Some("true") | Some("1")),
        shown(want),
    );
    let formats: Vec<String> = d
        .children_named(ns::MD, "NameIDFormat")
        .map(|n| n.text().trim().to_string())
        .collect();
    check(
        &mut out,
        "idp-metadata.cie.name-id-format",
        formats.is_empty() || formats.iter().any(|f| f == ns::NAMEID_TRANSIENT),
        if formats.is_empty() {
            "none (as the real CIE metadata)".to_string()
        } else {
            list(&formats)
        },
    );
    (out, Some(m))
}
