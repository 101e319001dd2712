//! SP metadata checks (SPID SP profile, Avviso 29 v3 certificates), public and private SPs.
//!
//! Every check is a `sp-metadata.*` code of the rule table. The SP's kind (public or private)
//! is read from the metadata (`spid:Public` / `spid:Private` in the `other` contact) and
//! decides which contact and certificate-policy checks apply. Checks that repeat per element
//! (each AssertionConsumerService, SingleLogoutService, RequestedAttribute, certificate) are
//! recorded once per element, as spid-sp-test does. A check whose subject is absent (no ACS,
//! no certificate…) is still recorded, as a non-failing "not evaluated" entry, so counts do
//! not shrink while the absence itself fails once, under its own code.
//!
//! https and custom ports: SPID production metadata uses https URLs without custom ports
//! (spid-sp-test checks them with `-p`). They are recommendations here (warnings), and do not
//! apply at all to a loopback SP (127.0.0.0/8, ::1, localhost): a test SP on a developer's
//! machine has no certificate for https and runs on an ephemeral port.

use super::{advise, list, rule, self_signed, shown, xsd, CheckResult};
use spid_core::attributes::is_spid_attribute;
use spid_core::saml::metadata::{self, EntityMetadata};
use spid_core::saml::ns;
use spid_core::saml::xml::{self, Element, Limits};
use spid_core::Rule as R;
use std::collections::{BTreeMap, BTreeSet};

/// The SP's kind as the metadata declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Public,
    Private,
    Unknown,
}

impl Kind {
    /// The kind as a word for check details.
    fn word(self) -> &'static str {
        match self {
            Kind::Public => "public",
            Kind::Private => "private",
            Kind::Unknown => "unknown",
        }
    }
}

/// The xml:lang values of each Organization child, e.g. `OrganizationName: it, en`.
fn langs_shown(langs: &BTreeMap<&str, Vec<String>>) -> String {
    let parts: Vec<String> = langs
        .iter()
        .map(|(name, ls)| format!("{name}: {}", list(ls.iter().map(|l| shown(Some(l))))))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join("; ")
    }
}

/// Records `r` as not evaluated (its subject is missing; that absence fails elsewhere).
fn skipped(out: &mut Vec<CheckResult>, r: R, why: &str) {
    advise(out, r, false, format!("not evaluated: {why}"));
}

/// Checks SP metadata. Returns the parsed metadata when it is usable at all.
pub fn metadata_checks(text: &str) -> (Vec<CheckResult>, Option<EntityMetadata>) {
    let mut out = Vec::new();
    let root = match xml::parse(
        text,
        &Limits {
            max_bytes: 1 << 20,
            ..Limits::default()
        },
    ) {
        Ok(r) => r,
        Err(e) => {
            rule(&mut out, R::SpMdXml, false, e.to_string());
            return (out, None);
        }
    };
    rule(&mut out, R::SpMdXml, true, "well-formed, no DTD");
    schema_checks(&mut out, text);
    let parsed = metadata::parse(text);
    let root_pos = out.len();
    rule(
        &mut out,
        R::SpMdEntityRoot,
        parsed.is_ok(),
        match &parsed {
            Ok(_) => "one md:EntityDescriptor".to_string(),
            Err(e) => e.to_string(),
        },
    );
    entity_checks(&mut out, &root);
    let sps: Vec<&Element> = root.children_named(ns::MD, "SPSSODescriptor").collect();
    rule(
        &mut out,
        R::SpMdSpDescriptor,
        sps.len() == 1,
        format!("{} SPSSODescriptor", sps.len()),
    );
    let others: Vec<&str> = root
        .elements()
        .filter(|e| e.ns.as_deref() == Some(ns::MD) && e.local().ends_with("Descriptor"))
        .map(Element::local)
        .filter(|l| *l != "SPSSODescriptor")
        .collect();
    advise(
        &mut out,
        R::SpMdOnlySpRole,
        others.is_empty(),
        if others.is_empty() {
            "only SPSSODescriptor".to_string()
        } else {
            format!("also {}", others.join(", "))
        },
    );
    signature_checks(&mut out, text, &root, parsed.as_ref().ok());
    let kind = kind_of(&root);
    let empty = Element::new("md:SPSSODescriptor", Some(ns::MD));
    let sp = sps.first().copied();
    sp_attribute_checks(&mut out, sp);
    let sp = sp.unwrap_or(&empty);
    key_checks(&mut out, sp, &root, kind);
    acs_checks(&mut out, sp, root.attr("entityID").unwrap_or(""));
    slo_checks(&mut out, sp);
    attribute_service_checks(&mut out, sp);
    organization_checks(&mut out, &root);
    contact_checks(&mut out, &root, kind);
    match parsed {
        Ok(m) => (out, Some(m)),
        Err(_) => {
            // The reason the metadata is unusable goes last (callers report the last detail).
            let r = out.remove(root_pos);
            out.push(r);
            (out, None)
        }
    }
}

/// XSD validation, split by namespace: SAML (with XML-DSig, XML-Enc), SPID, invoicing.
fn schema_checks(out: &mut Vec<CheckResult>, text: &str) {
    let errs = match xsd::validate(text, xsd::Schema::Metadata) {
        Ok(()) => Vec::new(),
        Err(e) => e,
    };
    let (mut spid, mut fpa, mut saml) = (Vec::new(), Vec::new(), Vec::new());
    for e in errs {
        if e.contains("'cie:") {
            // The CIE contact extensions: judged by sp-metadata.cie.xsd in a CIE profile.
            continue;
        } else if e.contains("'spid:") {
            spid.push(e);
        } else if e.contains("'fpa:") {
            fpa.push(e);
        } else {
            saml.push(e);
        }
    }
    let has = |p: &str| text.contains(p);
    let report = |errs: &[String], ok: &str| {
        if errs.is_empty() {
            ok.to_string()
        } else {
            errs.join("; ")
        }
    };
    rule(
        out,
        R::SpMdXsdSaml,
        saml.is_empty(),
        report(&saml, "valid against saml-schema-metadata-2.0.xsd"),
    );
    rule(
        out,
        R::SpMdXsdSpid,
        spid.is_empty(),
        report(&spid, "spid: extensions valid"),
    );
    rule(
        out,
        R::SpMdXsdInvoicing,
        fpa.is_empty(),
        report(
            &fpa,
            if has(xsd::INVOICING_NS) {
                "fpa: extensions valid"
            } else {
                "no invoicing extensions"
            },
        ),
    );
}

/// Whether `u` is an absolute http(s) URL with a host.
fn http_url(u: &str) -> Option<url::Url> {
    let p = url::Url::parse(u.trim()).ok()?;
    (matches!(p.scheme(), "http" | "https") && p.host_str().is_some_and(|h| !h.is_empty()))
        .then_some(p)
}

/// Whether the URL's host is a loopback address or localhost.
fn loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

/// Records a production-only URL rule (https, no port) over `urls`: a warning when it fails,
/// not applicable to loopback URLs.
fn production_url(out: &mut Vec<CheckResult>, r: R, urls: &[&str], ok: impl Fn(&url::Url) -> bool) {
    let parsed: Vec<url::Url> = urls.iter().filter_map(|u| http_url(u)).collect();
    if parsed.is_empty() {
        skipped(out, r, "no URL to check");
        return;
    }
    let bad: Vec<&str> = parsed
        .iter()
        .filter(|u| !loopback(u) && !ok(u))
        .map(url::Url::as_str)
        .collect();
    let detail = if !bad.is_empty() {
        bad.join(", ")
    } else if parsed.iter().all(loopback) {
        "loopback test SP: not applicable".to_string()
    } else {
        "ok".to_string()
    };
    advise(out, r, bad.is_empty(), detail);
}

fn entity_checks(out: &mut Vec<CheckResult>, root: &Element) {
    let id = root.attr("entityID").unwrap_or("");
    rule(out, R::SpMdEntityId, !id.trim().is_empty(), shown(Some(id)));
    let url = http_url(id);
    rule(out, R::SpMdEntityIdUrl, url.is_some(), id.to_string());
    production_url(out, R::SpMdEntityIdHttps, &[id], |u| u.scheme() == "https");
    rule(
        out,
        R::SpMdEntityIdQuery,
        !id.is_empty() && !id.contains('?') && !id.contains('#'),
        id.to_string(),
    );
    rule(
        out,
        R::SpMdEntityIdLength,
        id.chars().count() <= 1024,
        format!("{} characters", id.chars().count()),
    );
    match root.attr("validUntil") {
        None => rule(out, R::SpMdEntityValidUntil, true, "no validUntil"),
        Some(v) => {
            let t = chrono::DateTime::parse_from_rfc3339(v);
            rule(
                out,
                R::SpMdEntityValidUntil,
                t.is_ok_and(|t| t > spid_core::clock::now()),
                v.to_string(),
            );
        }
    }
}

fn signature_checks(
    out: &mut Vec<CheckResult>,
    text: &str,
    root: &Element,
    m: Option<&EntityMetadata>,
) {
    let sigs: Vec<&Element> = root.children_named(ns::DS, "Signature").collect();
    rule(
        out,
        R::SpMdSignaturePresent,
        sigs.len() == 1,
        format!("{} ds:Signature child(ren) of EntityDescriptor", sigs.len()),
    );
    let Some(sig) = sigs.first() else {
        for r in [
            R::SpMdSignatureReference,
            R::SpMdSignatureTransforms,
            R::SpMdSignatureC14n,
            R::SpMdSignatureMethod,
            R::SpMdSignatureAlgorithm,
            R::SpMdDigestMethod,
            R::SpMdDigestAlgorithm,
            R::SpMdSignatureValid,
            R::SpMdSignatureKeyInfo,
        ] {
            skipped(out, r, "no signature");
        }
        return;
    };
    let si = sig.child(ns::DS, "SignedInfo");
    let refs: Vec<&Element> = si
        .map(|s| s.children_named(ns::DS, "Reference").collect())
        .unwrap_or_default();
    let want = root.attr("ID").map(|id| format!("#{id}"));
    rule(
        out,
        R::SpMdSignatureReference,
        refs.len() == 1 && want.is_some() && refs[0].attr("URI") == want.as_deref(),
        format!(
            "{} Reference(s), URI {}, EntityDescriptor ID {}",
            refs.len(),
            shown(refs.first().and_then(|r| r.attr("URI"))),
            shown(root.attr("ID"))
        ),
    );
    let transforms: Vec<&str> = refs
        .iter()
        .filter_map(|r| r.child(ns::DS, "Transforms"))
        .flat_map(|t| t.children_named(ns::DS, "Transform"))
        .map(|t| t.attr("Algorithm").unwrap_or(""))
        .collect();
    rule(
        out,
        R::SpMdSignatureTransforms,
        !refs.is_empty()
            && transforms
                .iter()
                .all(|t| *t == ns::ENVELOPED || *t == ns::EXC_C14N),
        list(&transforms),
    );
    let c14n = si
        .and_then(|s| s.child(ns::DS, "CanonicalizationMethod"))
        .and_then(|c| c.attr("Algorithm"));
    rule(
        out,
        R::SpMdSignatureC14n,
        c14n == Some(ns::EXC_C14N),
        shown(c14n),
    );
    let method = si.and_then(|s| s.child(ns::DS, "SignatureMethod"));
    let alg = method.and_then(|m| m.attr("Algorithm"));
    rule(
        out,
        R::SpMdSignatureMethod,
        alg.is_some_and(|a| !a.is_empty()),
        shown(alg),
    );
    const RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
    rule(
        out,
        R::SpMdSignatureAlgorithm,
        alg == Some(ns::RSA_SHA256) || alg == Some(RSA_SHA512),
        shown(alg),
    );
    let digests: Vec<Option<&str>> = refs
        .iter()
        .map(|r| {
            r.child(ns::DS, "DigestMethod")
                .and_then(|d| d.attr("Algorithm"))
        })
        .collect();
    rule(
        out,
        R::SpMdDigestMethod,
        !digests.is_empty() && digests.iter().all(|d| d.is_some_and(|a| !a.is_empty())),
        list(digests.iter().map(|d| shown(*d))),
    );
    const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";
    rule(
        out,
        R::SpMdDigestAlgorithm,
        !digests.is_empty()
            && digests
                .iter()
                .all(|d| *d == Some(ns::DIGEST_SHA256) || *d == Some(SHA512)),
        list(digests.iter().map(|d| shown(*d))),
    );
    match m {
        Some(m) => {
            let ok = self_signed(text, root, m);
            rule(
                out,
                R::SpMdSignatureValid,
                ok,
                if ok {
                    "verifies with the metadata's signing certificate"
                } else {
                    "does not verify with the metadata's signing certificate(s)"
                },
            );
            let key_info: Vec<Vec<u8>> = sig
                .child(ns::DS, "KeyInfo")
                .into_iter()
                .flat_map(|k| k.children_named(ns::DS, "X509Data"))
                .flat_map(|d| d.children_named(ns::DS, "X509Certificate"))
                .filter_map(|c| b64(&c.text()))
                .collect();
            rule(
                out,
                R::SpMdSignatureKeyInfo,
                key_info.iter().all(|c| m.signing_certs.contains(c)),
                format!(
                    "{} certificate(s) in KeyInfo, all among the signing KeyDescriptors: {}",
                    key_info.len(),
                    key_info.iter().all(|c| m.signing_certs.contains(c))
                ),
            );
        }
        None => {
            rule(out, R::SpMdSignatureValid, false, "metadata unusable");
            skipped(out, R::SpMdSignatureKeyInfo, "metadata unusable");
        }
    }
}

fn b64(t: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let clean: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean)
        .ok()
        .filter(|d| !d.is_empty())
}

fn sp_attribute_checks(out: &mut Vec<CheckResult>, sp: Option<&Element>) {
    let Some(sp) = sp else {
        for r in [
            R::SpMdProtocolPresent,
            R::SpMdProtocolSaml2,
            R::SpMdAuthnSignedPresent,
            R::SpMdAuthnSigned,
            R::SpMdWantSignedPresent,
            R::SpMdWantSigned,
            R::SpMdNameIdFormat,
        ] {
            skipped(out, r, "no SPSSODescriptor");
        }
        return;
    };
    let pse = sp.attr("protocolSupportEnumeration");
    rule(
        out,
        R::SpMdProtocolPresent,
        pse.is_some_and(|p| !p.trim().is_empty()),
        shown(pse),
    );
    rule(
        out,
        R::SpMdProtocolSaml2,
        pse.is_some_and(|p| p.split_whitespace().collect::<Vec<_>>() == [ns::SAMLP]),
        shown(pse),
    );
    for (present, is_true, name) in [
        (
            R::SpMdAuthnSignedPresent,
            R::SpMdAuthnSigned,
            "AuthnRequestsSigned",
        ),
        (
            R::SpMdWantSignedPresent,
            R::SpMdWantSigned,
            "WantAssertionsSigned",
        ),
    ] {
        let v = sp.attr(name);
        rule(
            out,
            present,
            v.is_some_and(|v| !v.trim().is_empty()),
            format!("{name} {}", shown(v)),
        );
        rule(
            out,
            is_true,
            matches!(v.map(str::trim), Some("true" | "1")),
            format!("{name} {}", shown(v)),
        );
    }
    let formats: Vec<String> = sp
        .children_named(ns::MD, "NameIDFormat")
        .map(|f| f.text().trim().to_string())
        .collect();
    rule(
        out,
        R::SpMdNameIdFormat,
        formats.iter().all(|f| f == ns::NAMEID_TRANSIENT),
        if formats.is_empty() {
            "no NameIDFormat (transient is used)".to_string()
        } else {
            formats.join(", ")
        },
    );
}

/// KeyDescriptors and the Avviso 29 checks of each signing certificate.
fn key_checks(out: &mut Vec<CheckResult>, sp: &Element, root: &Element, kind: Kind) {
    let kds: Vec<&Element> = sp.children_named(ns::MD, "KeyDescriptor").collect();
    let certs_of = |kd: &Element| -> Vec<String> {
        kd.child(ns::DS, "KeyInfo")
            .into_iter()
            .flat_map(|k| k.children_named(ns::DS, "X509Data"))
            .flat_map(|d| d.children_named(ns::DS, "X509Certificate"))
            .map(|c| c.text())
            .filter(|t| !t.trim().is_empty())
            .collect()
    };
    let signing: Vec<&&Element> = kds
        .iter()
        .filter(|k| matches!(k.attr("use"), None | Some("signing")))
        .collect();
    let encryption: Vec<&&Element> = kds
        .iter()
        .filter(|k| k.attr("use") == Some("encryption"))
        .collect();
    rule(
        out,
        R::SpMdKeySigning,
        !signing.is_empty(),
        format!("{} signing KeyDescriptor(s)", signing.len()),
    );
    let without: usize = signing.iter().filter(|k| certs_of(k).is_empty()).count();
    rule(
        out,
        R::SpMdKeySigningCert,
        !signing.is_empty() && without == 0,
        format!("{without} signing KeyDescriptor(s) without a certificate"),
    );
    let enc_without = encryption.iter().filter(|k| certs_of(k).is_empty()).count();
    rule(
        out,
        R::SpMdKeyEncryptionCert,
        enc_without == 0,
        format!(
            "{} encryption KeyDescriptor(s), {enc_without} without a certificate",
            encryption.len()
        ),
    );
    let all: Vec<String> = kds.iter().flat_map(|k| certs_of(k)).collect();
    let bad: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            b64(t)
                .and_then(|d| openssl::x509::X509::from_der(&d).ok())
                .is_none()
        })
        .map(|(i, _)| i)
        .collect();
    rule(
        out,
        R::SpMdKeyCertParses,
        !all.is_empty() && bad.is_empty(),
        format!(
            "{} certificate(s), unparsable: {}",
            all.len(),
            list(bad.iter().map(|i| format!("#{i}")))
        ),
    );
    let mut seen = BTreeSet::new();
    let signing_der: Vec<Vec<u8>> = signing
        .iter()
        .flat_map(|k| certs_of(k))
        .filter_map(|t| b64(&t))
        .filter(|d| seen.insert(d.clone()))
        .collect();
    let ctx = cert::Context {
        entity_id: root.attr("entityID").unwrap_or(""),
        kind,
        contact: other_contact_ids(root),
    };
    let mut any = false;
    for der in &signing_der {
        if let Ok(c) = openssl::x509::X509::from_der(der) {
            any = true;
            cert::checks(out, &c, der, &ctx);
        }
    }
    if !any {
        for r in cert::RULES {
            skipped(out, *r, "no parsable signing certificate");
        }
    }
}

/// The codes of the `other` contact the certificate's organizationIdentifier must name.
#[derive(Debug, Default)]
struct ContactIds {
    ipa_code: Option<String>,
    vat_number: Option<String>,
    fiscal_code: Option<String>,
}

fn other_contact_ids(root: &Element) -> ContactIds {
    let ext = contacts(root, "other")
        .first()
        .and_then(|c| c.child(ns::MD, "Extensions"));
    let get = |n: &str| {
        ext.and_then(|e| e.child(ns::SPID, n))
            .map(|e| e.text().trim().to_string())
    };
    ContactIds {
        ipa_code: get("IPACode"),
        vat_number: get("VATNumber"),
        fiscal_code: get("FiscalCode"),
    }
}

fn acs_checks(out: &mut Vec<CheckResult>, sp: &Element, entity_id: &str) {
    let acs: Vec<&Element> = sp
        .children_named(ns::MD, "AssertionConsumerService")
        .collect();
    rule(
        out,
        R::SpMdAcsPresent,
        !acs.is_empty(),
        format!("{} AssertionConsumerService", acs.len()),
    );
    if acs.is_empty() {
        for r in [
            R::SpMdAcsIndex,
            R::SpMdAcsBinding,
            R::SpMdAcsLocation,
            R::SpMdAcsIndexUnique,
        ] {
            skipped(out, r, "no AssertionConsumerService");
        }
    }
    for (i, a) in acs.iter().enumerate() {
        let index = a.attr("index");
        rule(
            out,
            R::SpMdAcsIndex,
            index.is_some_and(|x| x.parse::<u16>().is_ok()),
            format!("ACS #{i}: index {}", shown(index)),
        );
        let b = a.attr("Binding");
        rule(
            out,
            R::SpMdAcsBinding,
            b == Some(ns::BINDING_POST),
            format!("ACS #{i}: Binding {}", shown(b)),
        );
        let l = a.attr("Location").unwrap_or("");
        rule(
            out,
            R::SpMdAcsLocation,
            http_url(l).is_some(),
            format!("ACS #{i}: Location {}", shown(a.attr("Location"))),
        );
    }
    if !acs.is_empty() {
        let idx: Vec<&str> = acs.iter().filter_map(|a| a.attr("index")).collect();
        let uniq: BTreeSet<&str> = idx.iter().copied().collect();
        rule(
            out,
            R::SpMdAcsIndexUnique,
            uniq.len() == idx.len(),
            format!("indexes {}", list(&idx)),
        );
    }
    let locations: Vec<&str> = acs.iter().filter_map(|a| a.attr("Location")).collect();
    production_url(out, R::SpMdAcsHttps, &locations, |u| u.scheme() == "https");
    let defaults: Vec<&&Element> = acs
        .iter()
        .filter(|a| matches!(a.attr("isDefault"), Some("true" | "1")))
        .collect();
    rule(
        out,
        R::SpMdAcsDefaultSingle,
        defaults.len() == 1,
        format!("{} default ACS", defaults.len()),
    );
    rule(
        out,
        R::SpMdAcsDefaultIndex,
        defaults.len() == 1 && defaults[0].attr("index") == Some("0"),
        format!(
            "default ACS index {}",
            shown(defaults.first().and_then(|d| d.attr("index")))
        ),
    );
    let mut urls: Vec<&str> = vec![entity_id];
    urls.extend(sp.elements().filter_map(|e| e.attr("Location")));
    production_url(out, R::SpMdEndpointPort, &urls, |u| u.port().is_none());
}

fn slo_checks(out: &mut Vec<CheckResult>, sp: &Element) {
    let slo: Vec<&Element> = sp.children_named(ns::MD, "SingleLogoutService").collect();
    rule(
        out,
        R::SpMdSloPresent,
        !slo.is_empty(),
        format!("{} SingleLogoutService", slo.len()),
    );
    if slo.is_empty() {
        for r in [
            R::SpMdSloBinding,
            R::SpMdSloLocation,
            R::SpMdSloResponseLocation,
        ] {
            skipped(out, r, "no SingleLogoutService");
        }
    }
    const SOAP: &str = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP";
    for (i, s) in slo.iter().enumerate() {
        let b = s.attr("Binding");
        rule(
            out,
            R::SpMdSloBinding,
            matches!(b, Some(x) if x == ns::BINDING_POST || x == ns::BINDING_REDIRECT || x == SOAP),
            format!("SLO #{i}: Binding {}", shown(b)),
        );
        let l = s.attr("Location").unwrap_or("");
        rule(
            out,
            R::SpMdSloLocation,
            http_url(l).is_some(),
            format!("SLO #{i}: Location {}", shown(s.attr("Location"))),
        );
        let rl = s.attr("ResponseLocation");
        rule(
            out,
            R::SpMdSloResponseLocation,
            rl.is_none_or(|r| http_url(r).is_some()),
            format!("SLO #{i}: ResponseLocation {}", shown(rl)),
        );
    }
    let locations: Vec<&str> = slo.iter().filter_map(|a| a.attr("Location")).collect();
    production_url(out, R::SpMdSloHttps, &locations, |u| u.scheme() == "https");
}

fn attribute_service_checks(out: &mut Vec<CheckResult>, sp: &Element) {
    let services: Vec<&Element> = sp
        .children_named(ns::MD, "AttributeConsumingService")
        .collect();
    rule(
        out,
        R::SpMdAttrsPresent,
        !services.is_empty(),
        format!("{} AttributeConsumingService", services.len()),
    );
    if services.is_empty() {
        for r in [
            R::SpMdAttrsIndex,
            R::SpMdAttrsIndexUnique,
            R::SpMdAttrsDefault,
            R::SpMdAttrsServiceName,
            R::SpMdAttrsServiceNameIt,
            R::SpMdAttrsRequested,
            R::SpMdAttrsName,
            R::SpMdAttrsNameFormat,
            R::SpMdAttrsUnique,
        ] {
            skipped(out, r, "no AttributeConsumingService");
        }
        return;
    }
    let idx: Vec<&str> = services.iter().filter_map(|s| s.attr("index")).collect();
    let uniq: BTreeSet<&str> = idx.iter().copied().collect();
    rule(
        out,
        R::SpMdAttrsIndexUnique,
        uniq.len() == idx.len(),
        format!("indexes {}", list(&idx)),
    );
    let defaults = services
        .iter()
        .filter(|s| matches!(s.attr("isDefault"), Some("true" | "1")))
        .count();
    rule(
        out,
        R::SpMdAttrsDefault,
        defaults <= 1,
        format!("{defaults} default service(s)"),
    );
    const URI: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";
    for (i, s) in services.iter().enumerate() {
        let index = s.attr("index");
        rule(
            out,
            R::SpMdAttrsIndex,
            index.is_some_and(|x| x.parse::<u16>().is_ok()),
            format!("service #{i}: index {}", shown(index)),
        );
        let names: Vec<&Element> = s.children_named(ns::MD, "ServiceName").collect();
        rule(
            out,
            R::SpMdAttrsServiceName,
            !names.is_empty()
                && names
                    .iter()
                    .all(|n| !n.text().trim().is_empty() && n.attr("xml:lang").is_some()),
            format!("service #{i}: {} ServiceName", names.len()),
        );
        advise(
            out,
            R::SpMdAttrsServiceNameIt,
            names.iter().any(|n| n.attr("xml:lang") == Some("it")),
            format!("service #{i}"),
        );
        let ras: Vec<&Element> = s.children_named(ns::MD, "RequestedAttribute").collect();
        rule(
            out,
            R::SpMdAttrsRequested,
            !ras.is_empty(),
            format!("service #{i}: {} RequestedAttribute", ras.len()),
        );
        for ra in &ras {
            let n = ra.attr("Name");
            rule(
                out,
                R::SpMdAttrsName,
                n.is_some_and(is_spid_attribute),
                format!("service #{i}: Name {}", shown(n)),
            );
            let f = ra.attr("NameFormat");
            rule(
                out,
                R::SpMdAttrsNameFormat,
                f.is_none_or(|f| f == ns::ATTRNAME_BASIC || f == URI),
                format!("service #{i}: {} NameFormat {}", shown(n), shown(f)),
            );
        }
        let mut seen = BTreeSet::new();
        let dups: Vec<&str> = ras
            .iter()
            .filter_map(|r| r.attr("Name"))
            .filter(|n| !seen.insert(*n))
            .collect();
        rule(
            out,
            R::SpMdAttrsUnique,
            dups.is_empty(),
            format!("service #{i}: duplicated {}", list(&dups)),
        );
    }
}

fn organization_checks(out: &mut Vec<CheckResult>, root: &Element) {
    let orgs: Vec<&Element> = root.children_named(ns::MD, "Organization").collect();
    rule(
        out,
        R::SpMdOrgPresent,
        orgs.len() == 1,
        format!("{} Organization", orgs.len()),
    );
    let empty = Element::new("md:Organization", Some(ns::MD));
    let org = orgs.first().copied().unwrap_or(&empty);
    let mut langs: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (r, name) in [
        (R::SpMdOrgName, "OrganizationName"),
        (R::SpMdOrgDisplayName, "OrganizationDisplayName"),
        (R::SpMdOrgUrl, "OrganizationURL"),
    ] {
        let els: Vec<&Element> = org.children_named(ns::MD, name).collect();
        let ok = !els.is_empty()
            && els
                .iter()
                .all(|e| e.attr("xml:lang").is_some() && !e.text().trim().is_empty());
        rule(out, r, ok, format!("{} {name}", els.len()));
        langs.insert(
            name,
            els.iter()
                .map(|e| e.attr("xml:lang").unwrap_or("").to_string())
                .collect(),
        );
    }
    let urls: Vec<String> = org
        .children_named(ns::MD, "OrganizationURL")
        .map(|e| e.text().trim().to_string())
        .collect();
    let bad: Vec<&String> = urls.iter().filter(|u| http_url(u).is_none()).collect();
    rule(
        out,
        R::SpMdOrgUrlValid,
        !urls.is_empty() && bad.is_empty(),
        format!("not URLs: {}", list(bad.iter().map(|u| shown(Some(u))))),
    );
    let sets: Vec<BTreeSet<&String>> = langs.values().map(|v| v.iter().collect()).collect();
    rule(
        out,
        R::SpMdOrgLangsSame,
        sets.windows(2).all(|w| w[0] == w[1]),
        langs_shown(&langs),
    );
    rule(
        out,
        R::SpMdOrgLangsUnique,
        langs
            .values()
            .all(|v| v.iter().collect::<BTreeSet<_>>().len() == v.len()),
        langs_shown(&langs),
    );
    rule(
        out,
        R::SpMdOrgItalian,
        langs.values().all(|v| v.iter().any(|l| l == "it")),
        langs_shown(&langs),
    );
}

/// ContactPersons of `contact_type` (the plain ones: no spid:entityType).
fn contacts<'a>(root: &'a Element, contact_type: &str) -> Vec<&'a Element> {
    root.children_named(ns::MD, "ContactPerson")
        .filter(|c| c.attr("contactType") == Some(contact_type))
        .filter(|c| c.attr("spid:entityType").is_none())
        .collect()
}

fn kind_of(root: &Element) -> Kind {
    let ext = contacts(root, "other")
        .first()
        .and_then(|c| c.child(ns::MD, "Extensions"));
    let public = ext.is_some_and(|e| e.child(ns::SPID, "Public").is_some());
    let private = ext.is_some_and(|e| e.child(ns::SPID, "Private").is_some());
    match (public, private) {
        (true, false) => Kind::Public,
        (false, true) => Kind::Private,
        _ => Kind::Unknown,
    }
}

/// `local@domain.tld` with the usual characters.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let labels: Vec<&str> = domain.split('.').collect();
    !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c))
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|t| t.len() >= 2 && t.chars().all(|c| c.is_ascii_alphabetic()))
}

/// ISO 3166-1 alpha-2 country codes.
const ISO3166: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI \
BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ \
DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ \
GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN \
KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS \
MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT \
PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF \
TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

fn is_country(c: &str) -> bool {
    c.len() == 2 && ISO3166.split(' ').any(|x| x == c)
}

/// A VAT number: a country prefix (ISO 3166, or EL for Greece as VIES writes it) and 1 to 28
/// letters or digits; an Italian one has exactly 11 digits.
fn is_vat_number(v: &str) -> bool {
    if v.len() < 3 || !v.is_char_boundary(2) {
        return false;
    }
    let (c, code) = v.split_at(2);
    (is_country(c) || c == "EL")
        && code.len() <= 28
        && code.chars().all(|ch| ch.is_ascii_alphanumeric())
        && (c != "IT" || (code.len() == 11 && code.chars().all(|ch| ch.is_ascii_digit())))
}

/// An Italian fiscal code: 16 letters and digits (a person) or 11 digits (a legal entity).
fn is_fiscal_code(v: &str) -> bool {
    (v.len() == 16 && v.chars().all(|c| c.is_ascii_alphanumeric()))
        || (v.len() == 11 && v.chars().all(|c| c.is_ascii_digit()))
}

/// An IndicePA code: 1 to 16 letters, digits and underscores.
fn is_ipa_code(v: &str) -> bool {
    (1..=16).contains(&v.len()) && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks of an e-mail list (`present` once, `valid` once).
fn emails(out: &mut Vec<CheckResult>, c: Option<&Element>, present: R, valid: R, who: &str) {
    let mails: Vec<String> = c
        .map(|c| {
            c.children_named(ns::MD, "EmailAddress")
                .map(|e| e.text().trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    rule(
        out,
        present,
        mails.iter().any(|m| !m.is_empty()),
        format!("{who}: {} EmailAddress", mails.len()),
    );
    let bad: Vec<&String> = mails
        .iter()
        .filter(|m| !is_email(m.strip_prefix("mailto:").unwrap_or(m)))
        .collect();
    rule(
        out,
        valid,
        !mails.is_empty() && bad.is_empty(),
        format!(
            "{who}: not e-mail addresses: {}",
            list(bad.iter().map(|m| shown(Some(m))))
        ),
    );
}

fn contact_checks(out: &mut Vec<CheckResult>, root: &Element, kind: Kind) {
    let others = contacts(root, "other");
    rule(
        out,
        R::SpMdOtherSingle,
        others.len() == 1,
        format!("{} ContactPerson of contactType other", others.len()),
    );
    let other = others.first().copied();
    let exts: Vec<&Element> = other
        .map(|c| c.children_named(ns::MD, "Extensions").collect())
        .unwrap_or_default();
    rule(
        out,
        R::SpMdOtherExtensions,
        exts.len() == 1,
        format!("{} Extensions", exts.len()),
    );
    let empty = Element::new("md:Extensions", Some(ns::MD));
    let ext = exts.first().copied().unwrap_or(&empty);
    let markers: Vec<&Element> = ext
        .elements()
        .filter(|e| e.is(ns::SPID, "Public") || e.is(ns::SPID, "Private"))
        .collect();
    rule(
        out,
        R::SpMdOtherKind,
        markers.len() == 1,
        list(markers.iter().map(|e| e.qname.as_str())),
    );
    rule(
        out,
        R::SpMdOtherKindEmpty,
        !markers.is_empty() && markers.iter().all(|m| m.children.is_empty()),
        "spid:Public / spid:Private without content",
    );
    const AGGREGATOR: [&str; 7] = [
        "PublicServicesFullAggregator",
        "PublicServicesLightAggregator",
        "PrivateServicesFullAggregator",
        "PrivateServicesLightAggregator",
        "PublicServicesFullOperator",
        "PublicServicesLightOperator",
        "PublicOperator",
    ];
    let ag: Vec<&str> = AGGREGATOR
        .iter()
        .copied()
        .filter(|n| ext.child(ns::SPID, n).is_some())
        .collect();
    rule(out, R::SpMdOtherNoAggregator, ag.is_empty(), list(&ag));
    let org_name = root
        .child(ns::MD, "Organization")
        .and_then(|o| o.child(ns::MD, "OrganizationName"))
        .map(|n| n.text().trim().to_string());
    let company = other.and_then(|c| c.child(ns::MD, "Company"));
    rule(
        out,
        R::SpMdOtherCompany,
        company.is_none_or(|c| {
            !c.text().trim().is_empty() && Some(c.text().trim().to_string()) == org_name
        }),
        format!(
            "Company {}, OrganizationName {}",
            shown(company.map(|c| c.text())),
            shown(org_name.as_deref())
        ),
    );
    emails(
        out,
        other,
        R::SpMdOtherEmail,
        R::SpMdOtherEmailValid,
        "other",
    );
    let phones: Vec<String> = other
        .map(|c| {
            c.children_named(ns::MD, "TelephoneNumber")
                .map(|e| e.text())
                .collect()
        })
        .unwrap_or_default();
    let phone_ok = |p: &str| {
        p.strip_prefix('+')
            .is_some_and(|d| (6..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()))
    };
    rule(
        out,
        R::SpMdOtherPhone,
        phones.iter().all(|p| phone_ok(p)),
        list(phones.iter().map(|p| shown(Some(p)))),
    );
    advise(
        out,
        R::SpMdOtherPhoneIt,
        phones.iter().all(|p| p.starts_with("+39")),
        list(phones.iter().map(|p| shown(Some(p)))),
    );
    let values = |n: &str| -> Vec<String> {
        ext.children_named(ns::SPID, n)
            .map(|e| e.text().trim().to_string())
            .collect()
    };
    let vats = values("VATNumber");
    rule(
        out,
        R::SpMdOtherVat,
        vats.len() <= 1 && vats.iter().all(|v| is_vat_number(v)),
        list(vats.iter().map(|v| shown(Some(v)))),
    );
    let cfs = values("FiscalCode");
    rule(
        out,
        R::SpMdOtherFiscalCode,
        cfs.len() <= 1 && cfs.iter().all(|v| is_fiscal_code(v)),
        list(cfs.iter().map(|c| shown(Some(c)))),
    );
    let ipas = values("IPACode");
    match kind {
        Kind::Public | Kind::Unknown => {
            let why = if kind == Kind::Unknown {
                " (kind unknown: checked as public)"
            } else {
                ""
            };
            rule(
                out,
                R::SpMdPublicIpaCode,
                ipas.len() == 1 && is_ipa_code(&ipas[0]),
                format!("{}{why}", list(ipas.iter().map(|c| shown(Some(c))))),
            );
            advise(
                out,
                R::SpMdPublicIpaTest,
                !ipas.iter().any(|i| i == "__aggrsint"),
                list(ipas.iter().map(|c| shown(Some(c)))),
            );
        }
        Kind::Private => {
            rule(
                out,
                R::SpMdPrivateNoIpa,
                ipas.is_empty(),
                list(ipas.iter().map(|c| shown(Some(c)))),
            );
            rule(
                out,
                R::SpMdPrivateVatOrCf,
                !vats.is_empty() || !cfs.is_empty(),
                format!(
                    "VATNumber {}, FiscalCode {}",
                    list(vats.iter().map(|v| shown(Some(v)))),
                    list(cfs.iter().map(|c| shown(Some(c))))
                ),
            );
            billing_checks(out, root, vats.first(), cfs.first());
        }
    }
}

fn billing_checks(
    out: &mut Vec<CheckResult>,
    root: &Element,
    vat: Option<&String>,
    cf: Option<&String>,
) {
    const FPA: &str = xsd::INVOICING_NS;
    let billing = contacts(root, "billing");
    rule(
        out,
        R::SpMdBillingSingle,
        billing.len() == 1,
        format!("{} ContactPerson of contactType billing", billing.len()),
    );
    let b = billing.first().copied();
    let exts: Vec<&Element> = b
        .map(|c| c.children_named(ns::MD, "Extensions").collect())
        .unwrap_or_default();
    rule(
        out,
        R::SpMdBillingExtensions,
        exts.len() == 1,
        format!("{} Extensions", exts.len()),
    );
    let empty = Element::new("md:Extensions", Some(ns::MD));
    let ext = exts.first().copied().unwrap_or(&empty);
    let cc: Vec<&Element> = ext.children_named(FPA, "CessionarioCommittente").collect();
    rule(
        out,
        R::SpMdBillingCessionario,
        cc.len() == 1,
        format!("{} fpa:CessionarioCommittente", cc.len()),
    );
    let dati = cc.first().and_then(|c| c.child(FPA, "DatiAnagrafici"));
    let billed_vat = dati.and_then(|d| d.child(FPA, "IdFiscaleIVA")).map(|i| {
        let t = |n| {
            i.child(FPA, n)
                .map(|e| e.text().trim().to_string())
                .unwrap_or_default()
        };
        format!("{}{}", t("IdPaese"), t("IdCodice"))
    });
    let billed_cf = dati
        .and_then(|d| d.child(FPA, "CodiceFiscale"))
        .map(|e| e.text().trim().to_string());
    let named = dati
        .and_then(|d| d.child(FPA, "Anagrafica"))
        .is_some_and(|a| {
            a.child(FPA, "Denominazione")
                .is_some_and(|d| !d.text().trim().is_empty())
                || (a.child(FPA, "Nome").is_some() && a.child(FPA, "Cognome").is_some())
        });
    let sede = cc.first().and_then(|c| c.child(FPA, "Sede")).is_some();
    rule(
        out,
        R::SpMdBillingIdentification,
        (billed_vat.is_some() || billed_cf.is_some()) && named && sede,
        format!(
            "IdFiscaleIVA {}, CodiceFiscale {}, named {named}, Sede {sede}",
            shown(billed_vat.as_deref()),
            shown(billed_cf.as_deref())
        ),
    );
    let matches =
        (vat.is_some() && billed_vat.as_ref() == vat) || (cf.is_some() && billed_cf.as_ref() == cf);
    advise(
        out,
        R::SpMdBillingMatches,
        matches,
        format!(
            "billed {} / {}, other contact {} / {}",
            shown(billed_vat.as_deref()),
            shown(billed_cf.as_deref()),
            shown(vat),
            shown(cf)
        ),
    );
    let terzo = ext.child(FPA, "TerzoIntermediarioSoggettoEmittente");
    rule(
        out,
        R::SpMdBillingTerzo,
        terzo.is_none_or(|t| t.elements().next().is_some()),
        format!("present: {}", terzo.is_some()),
    );
    emails(
        out,
        b,
        R::SpMdBillingEmail,
        R::SpMdBillingEmailValid,
        "billing",
    );
    let company = b.and_then(|c| c.child(ns::MD, "Company"));
    rule(
        out,
        R::SpMdBillingCompany,
        company.is_none_or(|c| !c.text().trim().is_empty()),
        shown(company.map(|c| c.text())),
    );
    let kinds = ext
        .elements()
        .filter(|e| e.is(ns::SPID, "Public") || e.is(ns::SPID, "Private"))
        .count();
    advise(
        out,
        R::SpMdBillingNoKind,
        kinds == 0,
        format!("{kinds} spid:Public/Private in the billing contact"),
    );
}

/// Avviso 29 v3 checks of one signing certificate.
mod cert {
    use super::{is_country, list, rule, shown, CheckResult, ContactIds, Kind, R};
    use openssl::pkey::Id;
    use openssl::x509::X509;

    /// A public-key type as a word for check details.
    fn key_type(id: Option<Id>) -> String {
        match id {
            None => "unreadable".to_string(),
            Some(Id::RSA) => "RSA".to_string(),
            Some(Id::EC) => "EC".to_string(),
            Some(Id::DSA) => "DSA".to_string(),
            Some(Id::ED25519) => "Ed25519".to_string(),
            Some(Id::ED448) => "Ed448".to_string(),
            Some(other) => format!("type {}", other.as_raw()),
        }
    }

    /// Every code `checks` records (for the not-evaluated entries).
    pub(super) const RULES: &[R] = &[
        R::SpMdCertKeyType,
        R::SpMdCertKeySizeMin,
        R::SpMdCertKeySize,
        R::SpMdCertSigAlg,
        R::SpMdCertValidity,
        R::SpMdCertVersion,
        R::SpMdCertBcPresent,
        R::SpMdCertBcCritical,
        R::SpMdCertBcCa,
        R::SpMdCertKuPresent,
        R::SpMdCertKuCritical,
        R::SpMdCertKuRequired,
        R::SpMdCertKuForbidden,
        R::SpMdCertPolPresent,
        R::SpMdCertPolCritical,
        R::SpMdCertPolAgid,
        R::SpMdCertPolSector,
        R::SpMdCertSubjectCn,
        R::SpMdCertSubjectC,
        R::SpMdCertSubjectO,
        R::SpMdCertSubjectL,
        R::SpMdCertSubjectOrgId,
        R::SpMdCertSubjectOrgIdMatch,
        R::SpMdCertSubjectUri,
        R::SpMdCertSubjectUriEntity,
        R::SpMdCertSubjectPersonal,
        R::SpMdCertSubjectEmail,
        R::SpMdCertSubjectValues,
    ];

    pub(super) struct Context<'a> {
        pub entity_id: &'a str,
        pub kind: Kind,
        pub contact: ContactIds,
    }

    const CN: &str = "2.5.4.3";
    const C: &str = "2.5.4.6";
    const L: &str = "2.5.4.7";
    const O: &str = "2.5.4.10";
    const URI: &str = "2.5.4.83";
    const ORG_ID: &str = "2.5.4.97";
    const EMAIL: &str = "1.2.840.113549.1.9.1";
    /// surname, givenName, initials, pseudonym, name (personal attributes).
    const PERSONAL: [(&str, &str); 5] = [
        ("2.5.4.4", "surname"),
        ("2.5.4.42", "givenName"),
        ("2.5.4.43", "initials"),
        ("2.5.4.65", "pseudonym"),
        ("2.5.4.41", "name"),
    ];
    const AGID_CERT: &str = "1.3.76.16.6";
    const PUBLIC_SP: &str = "1.3.76.16.4.2.1";
    const PRIVATE_SP: &str = "1.3.76.16.4.3.1";

    /// A DER element: tag and content.
    #[derive(Clone, Copy)]
    struct Tlv<'a> {
        tag: u8,
        body: &'a [u8],
    }

    /// Reads one DER element; returns it and the rest.
    fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
            (len, &rest[n..])
        };
        (rest.len() >= len).then(|| {
            (
                Tlv {
                    tag,
                    body: &rest[..len],
                },
                &rest[len..],
            )
        })
    }

    /// The elements of a constructed value.
    fn items(mut body: &[u8]) -> Option<Vec<Tlv<'_>>> {
        let mut v = Vec::new();
        while !body.is_empty() {
            let (t, rest) = read(body)?;
            v.push(t);
            body = rest;
        }
        Some(v)
    }

    /// A dotted OID from its content octets.
    fn oid(body: &[u8]) -> String {
        let mut arcs: Vec<u64> = Vec::new();
        let mut acc = 0u64;
        for &b in body {
            acc = (acc << 7) | (b & 0x7f) as u64;
            if b & 0x80 == 0 {
                if arcs.is_empty() {
                    let first = (acc / 40).min(2);
                    arcs.push(first);
                    arcs.push(acc - first * 40);
                } else {
                    arcs.push(acc);
                }
                acc = 0;
            }
        }
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }

    /// A directory string's text (UTF-8, Printable, IA5, BMP…).
    fn string(t: Tlv<'_>) -> String {
        if t.tag == 0x1e {
            let u: Vec<u16> = t
                .body
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16_lossy(&u)
        } else {
            String::from_utf8_lossy(t.body).into_owned()
        }
    }

    struct Parsed {
        /// (OID, value) of each subject attribute.
        subject: Vec<(String, String)>,
        /// (OID, critical, value) of each extension.
        extensions: Vec<(String, bool, Vec<u8>)>,
    }

    fn parse(der: &[u8]) -> Option<Parsed> {
        let (cert, _) = read(der)?;
        let tbs = *items(cert.body)?.first()?;
        let f = items(tbs.body)?;
        let off = usize::from(f.first()?.tag == 0xa0);
        let subject_seq = f.get(off + 4)?;
        let mut subject = Vec::new();
        for set in items(subject_seq.body)? {
            for atv in items(set.body)? {
                let parts = items(atv.body)?;
                subject.push((oid(parts.first()?.body), string(*parts.get(1)?)));
            }
        }
        let mut extensions = Vec::new();
        if let Some(x) = f.iter().skip(off + 6).find(|t| t.tag == 0xa3) {
            let (seq, _) = read(x.body)?;
            for e in items(seq.body)? {
                let parts = items(e.body)?;
                let id = oid(parts.first()?.body);
                let critical = parts.len() == 3 && parts[1].tag == 0x01 && parts[1].body != [0];
                extensions.push((id, critical, parts.last()?.body.to_vec()));
            }
        }
        Some(Parsed {
            subject,
            extensions,
        })
    }

    pub(super) fn checks(out: &mut Vec<CheckResult>, c: &X509, der: &[u8], ctx: &Context<'_>) {
        let subject_line = c
            .subject_name()
            .entries()
            .map(|e| {
                format!(
                    "{}={}",
                    match e.object().nid() {
                        openssl::nid::Nid::UNDEF => "uri?",
                        n => n.short_name().unwrap_or("?"),
                    },
                    e.data().to_string().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let tag = format!("certificate [{subject_line}]");
        let key = c.public_key().ok();
        let is_rsa = key.as_ref().is_some_and(|k| k.id() == Id::RSA);
        let bits = key.as_ref().map(|k| k.bits()).unwrap_or(0);
        rule(
            out,
            R::SpMdCertKeyType,
            is_rsa,
            format!("{tag}: key {}", key_type(key.as_ref().map(|k| k.id()))),
        );
        rule(
            out,
            R::SpMdCertKeySizeMin,
            is_rsa && bits >= 2048,
            format!("{tag}: {bits} bits"),
        );
        rule(
            out,
            R::SpMdCertKeySize,
            is_rsa && matches!(bits, 2048 | 3072 | 4096),
            format!("{tag}: {bits} bits"),
        );
        let sig = c.signature_algorithm().object().nid();
        rule(
            out,
            R::SpMdCertSigAlg,
            sig == openssl::nid::Nid::SHA256WITHRSAENCRYPTION
                || sig == openssl::nid::Nid::SHA512WITHRSAENCRYPTION,
            format!("{tag}: {}", sig.long_name().unwrap_or("unknown")),
        );
        let now = openssl::asn1::Asn1Time::days_from_now(0).ok();
        let in_force = now
            .as_ref()
            .is_some_and(|n| c.not_before() <= n.as_ref() && c.not_after() > n.as_ref());
        rule(
            out,
            R::SpMdCertValidity,
            in_force,
            format!("{tag}: {} to {}", c.not_before(), c.not_after()),
        );
        rule(
            out,
            R::SpMdCertVersion,
            c.version() == 2,
            format!("{tag}: version {}", c.version() + 1),
        );
        let Some(p) = parse(der) else {
            for r in &RULES[6..] {
                rule(out, *r, false, format!("{tag}: DER not understood"));
            }
            return;
        };
        let ext = |id: &str| p.extensions.iter().find(|e| e.0 == id);
        // basicConstraints
        match ext("2.5.29.19") {
            None => {
                rule(out, R::SpMdCertBcPresent, false, format!("{tag}: absent"));
                rule(out, R::SpMdCertBcCritical, false, format!("{tag}: absent"));
                rule(out, R::SpMdCertBcCa, false, format!("{tag}: absent"));
            }
            Some((_, critical, v)) => {
                rule(out, R::SpMdCertBcPresent, true, format!("{tag}: present"));
                rule(
                    out,
                    R::SpMdCertBcCritical,
                    !critical,
                    format!("{tag}: critical {critical}"),
                );
                let ca = read(v)
                    .and_then(|(s, _)| items(s.body))
                    .and_then(|i| i.first().copied())
                    .is_some_and(|t| t.tag == 0x01 && t.body != [0]);
                rule(out, R::SpMdCertBcCa, !ca, format!("{tag}: cA {ca}"));
            }
        }
        // keyUsage
        match ext("2.5.29.15") {
            None => {
                for r in [
                    R::SpMdCertKuPresent,
                    R::SpMdCertKuCritical,
                    R::SpMdCertKuRequired,
                    R::SpMdCertKuForbidden,
                ] {
                    rule(out, r, false, format!("{tag}: keyUsage absent"));
                }
            }
            Some((_, critical, v)) => {
                rule(out, R::SpMdCertKuPresent, true, format!("{tag}: present"));
                rule(
                    out,
                    R::SpMdCertKuCritical,
                    *critical,
                    format!("{tag}: critical {critical}"),
                );
                let bits = read(v)
                    .filter(|(t, _)| t.tag == 0x03)
                    .map(|(t, _)| t.body.get(1..).unwrap_or(&[]).to_vec())
                    .unwrap_or_default();
                let bit = |n: usize| bits.get(n / 8).is_some_and(|b| b & (0x80 >> (n % 8)) != 0);
                const NAMES: [&str; 9] = [
                    "digitalSignature",
                    "nonRepudiation",
                    "keyEncipherment",
                    "dataEncipherment",
                    "keyAgreement",
                    "keyCertSign",
                    "cRLSign",
                    "encipherOnly",
                    "decipherOnly",
                ];
                let set: Vec<&str> = (0..9).filter(|n| bit(*n)).map(|n| NAMES[n]).collect();
                rule(
                    out,
                    R::SpMdCertKuRequired,
                    bit(0) && bit(1),
                    format!("{tag}: {}", list(&set)),
                );
                rule(
                    out,
                    R::SpMdCertKuForbidden,
                    !(2..=6).any(bit),
                    format!("{tag}: {}", list(&set)),
                );
            }
        }
        // certificatePolicies
        let sector = match ctx.kind {
            Kind::Public => Some(PUBLIC_SP),
            Kind::Private => Some(PRIVATE_SP),
            Kind::Unknown => None,
        };
        match ext("2.5.29.32") {
            None => {
                for r in [
                    R::SpMdCertPolPresent,
                    R::SpMdCertPolCritical,
                    R::SpMdCertPolAgid,
                    R::SpMdCertPolSector,
                ] {
                    rule(out, r, false, format!("{tag}: certificatePolicies absent"));
                }
            }
            Some((_, critical, v)) => {
                rule(out, R::SpMdCertPolPresent, true, format!("{tag}: present"));
                rule(
                    out,
                    R::SpMdCertPolCritical,
                    !critical,
                    format!("{tag}: critical {critical}"),
                );
                let policies: Vec<String> = read(v)
                    .and_then(|(s, _)| items(s.body))
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|pi| items(pi.body)?.first().map(|o| oid(o.body)))
                    .collect();
                rule(
                    out,
                    R::SpMdCertPolAgid,
                    policies.iter().any(|p| p == AGID_CERT),
                    format!("{tag}: {}", list(&policies)),
                );
                rule(
                    out,
                    R::SpMdCertPolSector,
                    sector.is_some_and(|s| policies.iter().any(|p| p == s)),
                    format!(
                        "{tag}: {}, wanted {}",
                        list(&policies),
                        sector.unwrap_or("(SP kind unknown)")
                    ),
                );
            }
        }
        // Subject.
        let get = |id: &str| -> Vec<&str> {
            p.subject
                .iter()
                .filter(|(o, _)| o == id)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let one = |id: &str| get(id).first().map(|s| s.trim()).filter(|s| !s.is_empty());
        rule(
            out,
            R::SpMdCertSubjectCn,
            one(CN).is_some(),
            format!("{tag}: commonName {}", shown(one(CN))),
        );
        rule(
            out,
            R::SpMdCertSubjectC,
            one(C).is_some_and(is_country),
            format!("{tag}: countryName {}", shown(one(C))),
        );
        rule(
            out,
            R::SpMdCertSubjectO,
            one(O).is_some(),
            format!("{tag}: organizationName {}", shown(one(O))),
        );
        rule(
            out,
            R::SpMdCertSubjectL,
            one(L).is_some(),
            format!("{tag}: localityName {}", shown(one(L))),
        );
        let org_id = one(ORG_ID);
        let public_form = |v: &str| {
            v.strip_prefix("PA:IT-")
                .is_some_and(|c| (1..=16).contains(&c.len()) && !c.chars().any(char::is_whitespace))
        };
        let private_form = |v: &str| {
            v.strip_prefix("VATIT-")
                .is_some_and(|n| n.len() == 11 && n.chars().all(|c| c.is_ascii_digit()))
                || v.strip_prefix("CF:IT-").is_some_and(super::is_fiscal_code)
        };
        rule(
            out,
            R::SpMdCertSubjectOrgId,
            org_id.is_some_and(|v| match ctx.kind {
                Kind::Public => public_form(v),
                Kind::Private => private_form(v),
                Kind::Unknown => false,
            }),
            format!(
                "{tag}: organizationIdentifier {} ({} SP)",
                shown(org_id),
                ctx.kind.word()
            ),
        );
        let wanted: Vec<String> = match ctx.kind {
            Kind::Public => ctx
                .contact
                .ipa_code
                .iter()
                .map(|i| format!("PA:IT-{i}"))
                .collect(),
            Kind::Private => ctx
                .contact
                .vat_number
                .iter()
                .filter_map(|v| v.strip_prefix("IT"))
                .map(|v| format!("VATIT-{v}"))
                .chain(ctx.contact.fiscal_code.iter().map(|c| format!("CF:IT-{c}")))
                .collect(),
            Kind::Unknown => Vec::new(),
        };
        rule(
            out,
            R::SpMdCertSubjectOrgIdMatch,
            org_id.is_some_and(|v| wanted.iter().any(|w| w == v)),
            format!(
                "{tag}: organizationIdentifier {}, contact gives {}",
                shown(org_id),
                list(&wanted)
            ),
        );
        let uri = one(URI);
        rule(
            out,
            R::SpMdCertSubjectUri,
            uri.is_some(),
            format!("{tag}: uri {}", shown(uri)),
        );
        rule(
            out,
            R::SpMdCertSubjectUriEntity,
            uri == Some(ctx.entity_id),
            format!(
                "{tag}: uri {}, entityID {}",
                shown(uri),
                shown(Some(ctx.entity_id))
            ),
        );
        let personal: Vec<&str> = PERSONAL
            .iter()
            .filter(|(o, _)| !get(o).is_empty())
            .map(|(_, n)| *n)
            .collect();
        rule(
            out,
            R::SpMdCertSubjectPersonal,
            personal.is_empty(),
            format!("{tag}: personal attributes {}", list(&personal)),
        );
        super::advise(
            out,
            R::SpMdCertSubjectEmail,
            get(EMAIL).is_empty(),
            format!("{tag}: emailAddress {}", list(get(EMAIL))),
        );
        let empty: Vec<&str> = p
            .subject
            .iter()
            .filter(|(_, v)| v.trim().is_empty())
            .map(|(o, _)| o.as_str())
            .collect();
        rule(
            out,
            R::SpMdCertSubjectValues,
            !p.subject.is_empty() && empty.is_empty(),
            format!("{tag}: empty attributes {}", list(&empty)),
        );
    }
}

/// The CIE SP kind a `check-sp --profile cie-sp-*` run expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CieKind {
    /// `cie-sp-public`: `cie:Public` and `cie:IPACode`.
    Public,
    /// `cie-sp-private`: `cie:Private`, `cie:VATNumber` or `cie:FiscalCode`, `cie:NACE2Code`.
    Private,
}

/// SPID-only metadata checks a CIE SP is not held to, or that a `sp-metadata.cie.*` check
/// replaces (one defect, one failure): the SPID schemas, the Avviso 29 certificate profile,
/// the SPID contacts, the SPID attribute names and ServiceName languages.
fn spid_only_metadata(code: &str) -> bool {
    const REPLACED: &[R] = &[
        R::SpMdXsdSpid,
        R::SpMdXsdInvoicing,
        R::SpMdEntityRoot,
        R::SpMdSignaturePresent,
        R::SpMdAuthnSignedPresent,
        R::SpMdAuthnSigned,
        R::SpMdWantSignedPresent,
        R::SpMdWantSigned,
        R::SpMdNameIdFormat,
        R::SpMdAttrsServiceName,
        R::SpMdAttrsServiceNameIt,
        R::SpMdAttrsName,
    ];
    const KEPT_CERT: &[R] = &[
        R::SpMdCertKeyType,
        R::SpMdCertSigAlg,
        R::SpMdCertValidity,
        R::SpMdCertSubjectPersonal,
    ];
    REPLACED.iter().any(|r| r.code() == code)
        || code.starts_with("sp-metadata.contact.")
        || (code.starts_with("sp-metadata.cert.") && !KEPT_CERT.iter().any(|r| r.code() == code))
}

/// Checks a CIE SP's metadata (`check-sp --profile cie-sp-public|cie-sp-private`): the SAML
/// checks that CIE shares with SPID, then the `sp-metadata.cie.*` checks of the CIE SP
/// metadata model. Returns the parsed metadata when it is usable at all.
pub fn cie_metadata_checks(
    text: &str,
    kind: CieKind,
) -> (Vec<CheckResult>, Option<EntityMetadata>) {
    let (mut out, parsed) = metadata_checks(text);
    out.retain(|c| !spid_only_metadata(c.id));
    let Ok(root) = xml::parse(
        text,
        &Limits {
            max_bytes: 1 << 20,
            ..Limits::default()
        },
    ) else {
        return (out, parsed);
    };
    cie_checks(&mut out, &root, kind);
    cie_schema_check(&mut out, text);
    if parsed.is_none() {
        // The reason the metadata is unusable goes last (callers report the last detail).
        if let Some(i) = out.iter().position(|c| c.id == R::SpMdCieEntity.code()) {
            let r = out.remove(i);
            out.push(r);
        }
    }
    (out, parsed)
}

/// `sp-metadata.cie.xsd`: the `cie:` elements against our CIE extensions schema. Errors on
/// what another `sp-metadata.cie.*` check judges (Public/Private, IPACode, Municipality, and
/// an empty value, which the presence checks judge) are left to it: one defect, one failure.
fn cie_schema_check(out: &mut Vec<CheckResult>, text: &str) {
    const JUDGED_ELSEWHERE: [&str; 4] = ["Public", "Private", "IPACode", "Municipality"];
    let errs: Vec<String> = match xsd::validate(text, xsd::Schema::Metadata) {
        Ok(()) => Vec::new(),
        Err(e) => e,
    };
    let mine: Vec<String> = errs
        .into_iter()
        .filter(|e| {
            let Some(rest) = e.split("Element 'cie:").nth(1) else {
                return false;
            };
            let name = rest.split('\'').next().unwrap_or_default();
            !JUDGED_ELSEWHERE.contains(&name) && !e.contains("''")
        })
        .collect();
    let n = text.matches("<cie:").count();
    rule(
        out,
        R::SpMdCieXsd,
        mine.is_empty(),
        if mine.is_empty() {
            format!("{n} cie: element(s), valid against schemas/cie-extensions.xsd")
        } else {
            mine.join("; ")
        },
    );
}

/// The children `local` of `ext` in the CIE extensions namespace.
fn cie_values<'a>(ext: &'a Element, local: &'a str) -> Vec<&'a Element> {
    ext.children_named(spid_core::cie::SAML_EXTENSIONS_NS, local)
        .collect()
}

fn cie_checks(out: &mut Vec<CheckResult>, root: &Element, kind: CieKind) {
    let entity = root.is(ns::MD, "EntityDescriptor");
    rule(
        out,
        R::SpMdCieEntity,
        entity,
        format!("root is {}", root.qname),
    );
    rule(
        out,
        R::SpMdCieSignature,
        root.child(ns::DS, "Signature").is_some(),
        if root.child(ns::DS, "Signature").is_some() {
            "ds:Signature present"
        } else {
            "no ds:Signature child of the EntityDescriptor"
        },
    );
    let empty = Element::new("md:SPSSODescriptor", Some(ns::MD));
    let sp = root.child(ns::MD, "SPSSODescriptor").unwrap_or(&empty);
    for (r, a) in [
        (R::SpMdCieAuthnSigned, "AuthnRequestsSigned"),
        (R::SpMdCieWantSigned, "WantAssertionsSigned"),
    ] {
        let v = sp.attr(a);
        rule(
            out,
            r,
            matches!(v, Some("true" | "1")),
            format!("{a} {}", shown(v)),
        );
    }
    let services: Vec<&Element> = sp
        .children_named(ns::MD, "AttributeConsumingService")
        .collect();
    let outside: Vec<String> = services
        .iter()
        .flat_map(|s| s.children_named(ns::MD, "RequestedAttribute"))
        .filter_map(|a| a.attr("Name"))
        .filter(|n| !spid_core::cie::is_minimum_attribute(n))
        .map(str::to_string)
        .collect();
    rule(
        out,
        R::SpMdCieAttrs,
        outside.is_empty(),
        if outside.is_empty() {
            "every requested attribute is in the eIDAS minimum set".to_string()
        } else {
            format!("outside the minimum set: {}", list(&outside))
        },
    );
    let bad_names: Vec<String> = services
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            let names: Vec<&Element> = s.children_named(ns::MD, "ServiceName").collect();
            names.is_empty()
                || !names.iter().all(|n| {
                    let t = n.text();
                    let t = t.trim();
                    match n.attr("xml:lang") {
                        None => false,
                        Some("") => t.starts_with("urn:uuid:"),
                        Some(_) => !t.is_empty(),
                    }
                })
        })
        .map(|(i, _)| format!("#{i}"))
        .collect();
    rule(
        out,
        R::SpMdCieServiceName,
        bad_names.is_empty(),
        if bad_names.is_empty() {
            "each ServiceName has a value and xml:lang".to_string()
        } else {
            format!(
                "AttributeConsumingService {}: ServiceName missing, empty, without xml:lang, or with xml:lang=\"\" and not a urn:uuid",
                list(&bad_names)
            )
        },
    );
    let redirect = sp
        .children_named(ns::MD, "SingleLogoutService")
        .any(|s| s.attr("Binding") == Some(ns::BINDING_REDIRECT));
    rule(
        out,
        R::SpMdCieSloRedirect,
        redirect,
        if redirect {
            "a SingleLogoutService with HTTP-Redirect"
        } else {
            "no SingleLogoutService with HTTP-Redirect"
        },
    );
    let formats: Vec<String> = sp
        .children_named(ns::MD, "NameIDFormat")
        .map(|f| f.text().trim().to_string())
        .collect();
    rule(
        out,
        R::SpMdCieNameIdFormat,
        formats.iter().all(|f| f == ns::NAMEID_TRANSIENT),
        format!("NameIDFormat: {}", list(&formats)),
    );
    let people: Vec<&Element> = root.children_named(ns::MD, "ContactPerson").collect();
    rule(
        out,
        R::SpMdCieContactCount,
        (1..=2).contains(&people.len()),
        format!("{} ContactPerson", people.len()),
    );
    let types: Vec<&str> = people
        .iter()
        .map(|p| p.attr("contactType").unwrap_or("absent"))
        .collect();
    let admins: Vec<&Element> = people
        .iter()
        .copied()
        .filter(|p| p.attr("contactType") == Some("administrative"))
        .collect();
    rule(
        out,
        R::SpMdCieContactAdmin,
        admins.len() == 1
            && types
                .iter()
                .all(|t| *t == "administrative" || *t == "technical"),
        format!("contactType: {}", list(&types)),
    );
    let admin = admins.first().copied();
    let exts: Vec<&Element> = admin
        .map(|a| a.children_named(ns::MD, "Extensions").collect())
        .unwrap_or_default();
    let empty_ext = Element::new("md:Extensions", Some(ns::MD));
    let ext = exts.first().copied().unwrap_or(&empty_ext);
    let cie_children = ext
        .elements()
        .filter(|e| e.ns.as_deref() == Some(spid_core::cie::SAML_EXTENSIONS_NS))
        .count();
    rule(
        out,
        R::SpMdCieExtensions,
        exts.len() == 1 && cie_children > 0,
        format!(
            "{} Extensions in the administrative contact, {cie_children} element(s) in {}",
            exts.len(),
            spid_core::cie::SAML_EXTENSIONS_NS
        ),
    );
    let public = cie_values(ext, "Public");
    let private = cie_values(ext, "Private");
    let declared = match (public.len(), private.len()) {
        (1, 0) => Some(CieKind::Public),
        (0, 1) => Some(CieKind::Private),
        _ => None,
    };
    let markers_empty = public
        .iter()
        .chain(&private)
        .all(|m| m.text().trim().is_empty() && m.elements().next().is_none());
    rule(
        out,
        R::SpMdCieKind,
        declared == Some(kind) && markers_empty,
        format!(
            "{} cie:Public, {} cie:Private{}; the profile expects {}",
            public.len(),
            private.len(),
            if markers_empty { "" } else { ", not empty" },
            match kind {
                CieKind::Public => "a public SP",
                CieKind::Private => "a private SP",
            }
        ),
    );
    let one_value = |local: &str| -> (bool, String) {
        let v = cie_values(ext, local);
        let text = v.first().map(|e| e.text().trim().to_string());
        (
            v.len() == 1 && text.as_deref().is_some_and(|t| !t.is_empty()),
            format!("{} cie:{local} ({})", v.len(), shown(text)),
        )
    };
    let (ipa_ok, ipa) = one_value("IPACode");
    let ipa_count = cie_values(ext, "IPACode").len();
    match kind {
        CieKind::Public => rule(out, R::SpMdCieIpaCode, ipa_ok, ipa),
        CieKind::Private => {
            let has = |l: &str| {
                cie_values(ext, l)
                    .iter()
                    .any(|e| !e.text().trim().is_empty())
            };
            let (vat, cf) = (has("VATNumber"), has("FiscalCode"));
            rule(
                out,
                R::SpMdCieVatOrCf,
                (vat || cf) && ipa_count == 0,
                format!(
                    "cie:VATNumber {}, cie:FiscalCode {}, {ipa_count} cie:IPACode",
                    if vat { "present" } else { "absent" },
                    if cf { "present" } else { "absent" }
                ),
            );
            let (ok, d) = one_value("NACE2Code");
            rule(out, R::SpMdCieNace2, ok, d);
        }
    }
    let m = cie_values(ext, "Municipality");
    let mv = m.first().map(|e| e.text().trim().to_string());
    let belfiore = |c: &str| {
        let b = c.as_bytes();
        b.len() == 4 && b[0].is_ascii_alphabetic() && b[1..].iter().all(u8::is_ascii_digit)
    };
    rule(
        out,
        R::SpMdCieMunicipality,
        m.len() == 1 && mv.as_deref().is_some_and(belfiore),
        format!("{} cie:Municipality ({})", m.len(), shown(mv)),
    );
    let company = admin
        .and_then(|a| a.child(ns::MD, "Company"))
        .map(|c| c.text().trim().to_string());
    let org_names: Vec<String> = root
        .child(ns::MD, "Organization")
        .map(|o| {
            o.children_named(ns::MD, "OrganizationName")
                .map(|n| n.text().trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    rule(
        out,
        R::SpMdCieCompany,
        company
            .as_deref()
            .is_some_and(|c| !c.is_empty() && org_names.iter().any(|n| n == c)),
        format!(
            "Company {}, OrganizationName {}",
            shown(company.as_deref()),
            list(&org_names)
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::metadata_checks;
    use spid_core::saml::dsig::{self, Credential};
    use spid_core::saml::metadata::SpKind;
    use spid_core::saml::ns;
    use spid_core::saml::xml::{self, Limits};
    use std::collections::{BTreeSet, HashMap};
    use std::sync::{Mutex, OnceLock};

    const BASE: &str = "http://127.0.0.1:8000";

    fn private_kind() -> SpKind {
        SpKind::Private {
            vat_number: Some("IT12345678901".into()),
            fiscal_code: None,
            billing_email: "fatturazione@example.org".into(),
            billing_company: "spid-harness reference SP".into(),
        }
    }

    /// A credential for `entity_id` and the kind (generated once per pair: RSA keys are slow).
    fn cred(entity_id: &str, private: bool) -> Credential {
        static CACHE: OnceLock<Mutex<HashMap<(String, bool), Credential>>> = OnceLock::new();
        let mut c = CACHE.get_or_init(Default::default).lock().unwrap();
        c.entry((entity_id.to_string(), private))
            .or_insert_with(|| {
                let kind = if private {
                    private_kind()
                } else {
                    SpKind::Public {
                        ipa_code: "c_h501".into(),
                    }
                };
                crate::certs::sp_credential(entity_id, &kind).unwrap()
            })
            .clone()
    }

    /// Our SP's metadata at `base`, signed with a certificate for its entityID.
    fn sp_metadata(base: &str, private: bool) -> (String, Credential) {
        let c = cred(&format!("{base}/metadata"), private);
        let mut cfg = spid_sp::SpConfig::new(base, c.clone());
        if private {
            cfg.kind = private_kind();
        }
        let md = spid_sp::ServiceProvider::new(cfg)
            .unwrap()
            .metadata_xml()
            .to_string();
        (md, c)
    }

    fn honest(private: bool) -> (String, Credential) {
        sp_metadata(BASE, private)
    }

    /// Re-signs `xml` (its old signature removed) with `cred`.
    fn resign(xml_text: &str, cred: &Credential) -> String {
        let mut root = xml::parse(xml_text, &Limits::default()).unwrap();
        root.remove_children(ns::DS, "Signature");
        dsig::sign_root(root, cred).unwrap()
    }

    /// `edit` applied to the honest metadata, re-signed.
    fn edited(private: bool, edit: impl Fn(&str) -> String) -> String {
        let (md, c) = honest(private);
        let e = edit(&md);
        assert_ne!(e, md, "the edit changed nothing");
        resign(&e, &c)
    }

    fn replace(from: &'static str, to: &'static str) -> impl Fn(&str) -> String {
        move |m: &str| {
            assert!(m.contains(from), "{from} not in the metadata");
            m.replacen(from, to, 1)
        }
    }

    fn failing(md: &str) -> BTreeSet<&'static str> {
        metadata_checks(md)
            .0
            .iter()
            .filter(|c| c.failed())
            .map(|c| c.id)
            .collect()
    }

    fn warned(md: &str) -> BTreeSet<&'static str> {
        metadata_checks(md)
            .0
            .iter()
            .filter(|c| !c.holds() && c.warning && !c.detail.starts_with("not evaluated"))
            .map(|c| c.id)
            .collect()
    }

    #[track_caller]
    fn assert_fails(md: &str, want: &[&str]) {
        let got = failing(md);
        let want: BTreeSet<&str> = want.iter().copied().collect();
        let details: Vec<String> = metadata_checks(md)
            .0
            .iter()
            .filter(|c| c.failed())
            .map(|c| format!("{}: {}", c.id, c.detail))
            .collect();
        assert_eq!(got, want, "{details:#?}");
    }

    fn every_code_is_a_rule(out: &[super::CheckResult]) {
        for c in out {
            let r = spid_core::Rule::from_code(c.id).unwrap_or_else(|| panic!("{}", c.id));
            assert!(c.id.starts_with("sp-metadata."), "{}", c.id);
            assert_eq!(c.reference, r.reference());
        }
    }

    #[test]
    fn our_public_metadata_passes_every_check() {
        let (md, _) = honest(false);
        let (out, m) = metadata_checks(&md);
        assert!(m.is_some());
        let bad: Vec<_> = out.iter().filter(|c| !c.holds()).collect();
        assert!(bad.is_empty(), "{bad:#?}");
        assert!(out.len() >= 110, "{} checks", out.len());
        every_code_is_a_rule(&out);
    }

    #[test]
    fn our_private_metadata_passes_every_check() {
        let (md, _) = honest(true);
        let (out, m) = metadata_checks(&md);
        assert!(m.is_some());
        let bad: Vec<_> = out.iter().filter(|c| !c.holds()).collect();
        assert!(bad.is_empty(), "{bad:#?}");
        // spid-sp-test 1.2.18 --extra runs 125 metadata checks on it.
        assert!(out.len() >= 125, "{} checks", out.len());
        every_code_is_a_rule(&out);
        let ids: BTreeSet<&str> = out.iter().map(|c| c.id).collect();
        assert!(ids.contains("sp-metadata.contact.billing.cessionario"));
        assert!(!ids.contains("sp-metadata.contact.public.ipa-code"));
    }

    /// A CIE SP's metadata as `spid_core::cie::build_sp_metadata` writes it, signed.
    fn cie_metadata(private: bool, service_name: &str) -> (String, Credential) {
        use spid_core::cie::{SpKind as CieSpKind, SpMetadataConfig};
        let c = cred(&format!("{BASE}/metadata"), private);
        let cfg = SpMetadataConfig {
            entity_id: format!("{BASE}/metadata"),
            acs_url: format!("{BASE}/acs"),
            slo_url: format!("{BASE}/slo"),
            attributes: spid_core::cie::MINIMUM_ATTRIBUTES
                .map(String::from)
                .to_vec(),
            service_name: service_name.into(),
            organization_name: "spid-harness reference SP".into(),
            organization_url: format!("{BASE}/"),
            contact_email: "info@example.org".into(),
            contact_phone: Some("+390600000000".into()),
            municipality: "H501".into(),
            province: Some("RM".into()),
            kind: if private {
                CieSpKind::Private {
                    vat_number: Some("IT12345678901".into()),
                    fiscal_code: None,
                    nace2_code: "62.01".into(),
                }
            } else {
                CieSpKind::Public {
                    ipa_code: "c_h501".into(),
                }
            },
        };
        (spid_core::cie::build_sp_metadata(&cfg, &c).unwrap(), c)
    }

    fn cie_kind(private: bool) -> super::CieKind {
        if private {
            super::CieKind::Private
        } else {
            super::CieKind::Public
        }
    }

    fn cie_failing(md: &str, private: bool) -> Vec<String> {
        super::cie_metadata_checks(md, cie_kind(private))
            .0
            .iter()
            .filter(|c| c.failed())
            .map(|c| format!("{}: {}", c.id, c.detail))
            .collect()
    }

    #[track_caller]
    fn assert_cie_fails(md: &str, private: bool, want: &[&str]) {
        let got = cie_failing(md, private);
        let ids: BTreeSet<&str> = got.iter().map(|d| d.split(':').next().unwrap()).collect();
        let want: BTreeSet<&str> = want.iter().copied().collect();
        assert_eq!(ids, want, "{got:#?}");
    }

    #[test]
    fn cie_metadata_passes_every_cie_check() {
        for (private, name) in [
            (false, "spid-harness reference SP"),
            (true, "spid-harness reference SP"),
            (false, "urn:uuid:6e8bc430-9c3a-4f0f-8a4e-0c6d1b2e3f41"),
        ] {
            let (md, _) = cie_metadata(private, name);
            let (out, m) = super::cie_metadata_checks(&md, cie_kind(private));
            assert!(m.is_some());
            let bad: Vec<_> = out.iter().filter(|c| !c.holds()).collect();
            assert!(bad.is_empty(), "{bad:#?}");
            every_code_is_a_rule(&out);
            let ids: BTreeSet<&str> = out.iter().map(|c| c.id).collect();
            assert!(
                !ids.iter().any(|i| i.starts_with("sp-metadata.contact.")),
                "SPID contact checks in a CIE run"
            );
            assert!(!ids.contains("sp-metadata.xsd.spid"));
            let cie = ids
                .iter()
                .filter(|i| i.starts_with("sp-metadata.cie."))
                .count();
            // 14 shared and the schema, then IPACode (public) or VAT/FiscalCode + NACE2Code
            // (private).
            assert_eq!(cie, if private { 17 } else { 16 }, "{ids:?}");
        }
        // Our SP's CIE metadata (`sp --cie`) is the same model.
        let mut cfg = spid_sp::SpConfig::new(BASE, cred(&format!("{BASE}/metadata"), false));
        cfg.cie_metadata = true;
        cfg.attributes = spid_core::cie::MINIMUM_ATTRIBUTES
            .map(String::from)
            .to_vec();
        let md = spid_sp::ServiceProvider::new(cfg)
            .unwrap()
            .metadata_xml()
            .to_string();
        assert_cie_fails(&md, false, &[]);
        // SPID metadata is no CIE metadata.
        let (spid, _) = honest(false);
        let got = cie_failing(&spid, false);
        assert!(
            got.iter()
                .any(|f| f.starts_with("sp-metadata.cie.contact.administrative")),
            "{got:#?}"
        );
    }

    #[test]
    fn each_cie_metadata_edit_fails_exactly_its_check() {
        const ADMIN_END: &str = "</md:ContactPerson>";
        type MdEdit = Box<dyn Fn(&str) -> String>;
        let cases: Vec<(bool, MdEdit, &[&str])> = vec![
            (
                false,
                Box::new(replace(
                    "AuthnRequestsSigned=\"true\"",
                    "AuthnRequestsSigned=\"false\"",
                )),
                &["sp-metadata.cie.authn-requests-signed"],
            ),
            (
                false,
                Box::new(replace(
                    "WantAssertionsSigned=\"true\"",
                    "WantAssertionsSigned=\"false\"",
                )),
                &["sp-metadata.cie.want-assertions-signed"],
            ),
            (
                false,
                Box::new(replace("Name=\"fiscalNumber\"", "Name=\"spidCode\"")),
                &["sp-metadata.cie.attrs.minimum-set"],
            ),
            (
                false,
                Box::new(replace(
                    "<md:ServiceName xml:lang=\"it\">",
                    "<md:ServiceName xml:lang=\"\">",
                )),
                &["sp-metadata.cie.attrs.service-name"],
            ),
            (
                false,
                Box::new(replace(
                    ns::BINDING_REDIRECT,
                    "urn:oasis:names:tc:SAML:2.0:bindings:SOAP",
                )),
                &["sp-metadata.cie.slo.redirect"],
            ),
            (
                false,
                Box::new(replace(
                    ns::NAMEID_TRANSIENT,
                    "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
                )),
                &["sp-metadata.cie.name-id-format"],
            ),
            (
                false,
                Box::new(|m: &str| {
                    let extra = "<md:ContactPerson contactType=\"technical\"><md:EmailAddress>t@example.org</md:EmailAddress></md:ContactPerson>";
                    m.replacen(ADMIN_END, &format!("{ADMIN_END}{extra}{extra}"), 1)
                }),
                &["sp-metadata.cie.contact.count"],
            ),
            (
                false,
                Box::new(|m: &str| {
                    let extra = "<md:ContactPerson contactType=\"other\"><md:EmailAddress>t@example.org</md:EmailAddress></md:ContactPerson>";
                    m.replacen(ADMIN_END, &format!("{ADMIN_END}{extra}"), 1)
                }),
                &["sp-metadata.cie.contact.administrative"],
            ),
            (
                false,
                Box::new(|m: &str| {
                    let start = m.find("<md:Extensions").unwrap();
                    let end = m.find("</md:Extensions>").unwrap() + "</md:Extensions>".len();
                    let ext = m[start..end].to_string();
                    m.replacen(&ext, &format!("{ext}{ext}"), 1)
                }),
                &["sp-metadata.cie.contact.extensions", "sp-metadata.xsd.saml"],
            ),
            (
                false,
                Box::new(replace("<cie:Public/>", "<cie:Private/>")),
                &["sp-metadata.cie.contact.kind"],
            ),
            (
                false,
                Box::new(replace("<cie:Public/>", "<cie:Public>yes</cie:Public>")),
                &["sp-metadata.cie.contact.kind"],
            ),
            (
                false,
                Box::new(replace("<cie:IPACode>c_h501</cie:IPACode>", "")),
                &["sp-metadata.cie.contact.public.ipa-code"],
            ),
            (
                false,
                Box::new(replace("<cie:Municipality>H501</cie:Municipality>", "")),
                &["sp-metadata.cie.contact.municipality"],
            ),
            (
                false,
                Box::new(replace(
                    "<cie:Municipality>H501</cie:Municipality>",
                    "<cie:Municipality>Roma</cie:Municipality>",
                )),
                &["sp-metadata.cie.contact.municipality"],
            ),
            (
                false,
                Box::new(replace(
                    "<md:Company>spid-harness reference SP</md:Company>",
                    "<md:Company>Another company</md:Company>",
                )),
                &["sp-metadata.cie.contact.company"],
            ),
            (
                true,
                Box::new(replace("<cie:VATNumber>IT12345678901</cie:VATNumber>", "")),
                &["sp-metadata.cie.contact.private.vat-or-fiscal-code"],
            ),
            (
                true,
                Box::new(replace(
                    "<cie:Private/>",
                    "<cie:Private/><cie:IPACode>c_h501</cie:IPACode>",
                )),
                &["sp-metadata.cie.contact.private.vat-or-fiscal-code"],
            ),
            (
                true,
                Box::new(replace("<cie:NACE2Code>62.01</cie:NACE2Code>", "")),
                &["sp-metadata.cie.contact.private.nace2-code"],
            ),
            // The forms only our CIE extensions schema judges.
            (
                true,
                Box::new(replace(
                    "<cie:VATNumber>IT12345678901</cie:VATNumber>",
                    "<cie:VATNumber>IT 123 456</cie:VATNumber>",
                )),
                &["sp-metadata.cie.xsd"],
            ),
            (
                true,
                Box::new(replace(
                    "<cie:NACE2Code>62.01</cie:NACE2Code>",
                    "<cie:NACE2Code>software</cie:NACE2Code>",
                )),
                &["sp-metadata.cie.xsd"],
            ),
            (
                false,
                Box::new(replace(
                    "<cie:Country>IT</cie:Country>",
                    "<cie:Country>Italia</cie:Country>",
                )),
                &["sp-metadata.cie.xsd"],
            ),
            (
                false,
                Box::new(replace(
                    "<cie:Country>IT</cie:Country>",
                    "<cie:Country>IT</cie:Country><cie:Province>Roma</cie:Province>",
                )),
                &["sp-metadata.cie.xsd"],
            ),
        ];
        for (private, edit, want) in cases {
            let (md, c) = cie_metadata(private, "spid-harness reference SP");
            let e = edit(&md);
            assert_ne!(e, md, "the edit changed nothing: {want:?}");
            assert_cie_fails(&resign(&e, &c), private, want);
        }
        // Unsigned.
        let (md, _) = cie_metadata(false, "spid-harness reference SP");
        let mut root = xml::parse(&md, &Limits::default()).unwrap();
        root.remove_children(ns::DS, "Signature");
        let got = cie_failing(&root.to_xml(), false);
        assert!(
            got.iter()
                .any(|f| f.starts_with("sp-metadata.cie.signature.present")),
            "{got:#?}"
        );
        assert!(
            got.iter()
                .all(|f| f.starts_with("sp-metadata.cie.signature.present")
                    || f.starts_with("sp-metadata.signature.")),
            "{got:#?}"
        );
        // Wrapped in an EntitiesDescriptor: not one EntityDescriptor, and unusable.
        let wrapped = format!(
            "<md:EntitiesDescriptor xmlns:md=\"{}\">{}</md:EntitiesDescriptor>",
            ns::MD,
            md.trim_start_matches(|c| c != '<')
                .split_once("?>")
                .map(|(_, r)| r.to_string())
                .unwrap_or(md.clone())
        );
        let (out, m) = super::cie_metadata_checks(&wrapped, super::CieKind::Public);
        assert!(m.is_none());
        assert_eq!(out.last().unwrap().id, "sp-metadata.cie.entity.single");
        assert!(out.last().unwrap().failed());
    }

    #[test]
    fn the_committed_test_certificate_names_a_placeholder_entity_id() {
        let creds = crate::runner::Credentials::embedded().unwrap();
        let md = spid_sp::ServiceProvider::new(spid_sp::SpConfig::new(BASE, creds.sp))
            .unwrap()
            .metadata_xml()
            .to_string();
        assert_fails(&md, &["sp-metadata.cert.subject.uri.entity-id"]);
    }

    #[test]
    fn not_well_formed_or_dtd() {
        let (md, _) = honest(false);
        let with_dtd = md.replacen(
            "<md:EntityDescriptor",
            "<!DOCTYPE x []><md:EntityDescriptor",
            1,
        );
        let (out, m) = metadata_checks(&with_dtd);
        assert!(m.is_none());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id, "sp-metadata.xml.well-formed");
        assert!(out[0].failed());
    }

    #[test]
    fn xsd_saml_violation() {
        let md = edited(
            false,
            replace("<md:NameIDFormat>", "<md:Bogus/><md:NameIDFormat>"),
        );
        assert_fails(&md, &["sp-metadata.xsd.saml"]);
        let detail = metadata_checks(&md).0[1].detail.clone();
        assert!(
            detail.contains("md:Bogus") && detail.starts_with("line "),
            "{detail}"
        );
    }

    #[test]
    fn xsd_spid_violation() {
        let md = edited(
            false,
            replace("<spid:Public/>", "<spid:Public>yes</spid:Public>"),
        );
        assert_fails(
            &md,
            &[
                "sp-metadata.xsd.spid",
                "sp-metadata.contact.other.kind.empty",
            ],
        );
    }

    #[test]
    fn xsd_invoicing_violation() {
        let md = edited(
            true,
            replace("<fpa:CAP>00100</fpa:CAP>", "<fpa:CAP>Roma</fpa:CAP>"),
        );
        assert_fails(&md, &["sp-metadata.xsd.invoicing"]);
    }

    #[test]
    fn signature_tampered_missing_foreign_and_weak() {
        let (md, c) = honest(false);
        let tampered = md.replacen("spid-harness reference SP", "spid-harness tampered SP", 1);
        assert_ne!(tampered, md);
        assert_fails(&tampered, &["sp-metadata.signature.valid"]);

        let mut root = xml::parse(&md, &Limits::default()).unwrap();
        root.remove_children(ns::DS, "Signature");
        let unsigned = root.to_xml();
        let got = failing(&unsigned);
        assert!(got.contains("sp-metadata.signature.present"), "{got:?}");
        assert!(
            !got.contains("sp-metadata.signature.method.allowed"),
            "{got:?}"
        );

        let foreign = crate::runner::Credentials::embedded().unwrap().foreign;
        assert_fails(
            &resign(&md, &foreign),
            &[
                "sp-metadata.signature.valid",
                "sp-metadata.signature.key-info",
            ],
        );

        let sha1 = md.replacen(
            ns::RSA_SHA256,
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
            1,
        );
        assert_fails(
            &sha1,
            &[
                "sp-metadata.signature.method.allowed",
                "sp-metadata.signature.valid",
            ],
        );
        let sha1 = md.replacen(
            ns::DIGEST_SHA256,
            "http://www.w3.org/2000/09/xmldsig#sha1",
            1,
        );
        assert_fails(
            &sha1,
            &[
                "sp-metadata.signature.digest.allowed",
                "sp-metadata.signature.valid",
            ],
        );
        let _ = c;
    }

    #[test]
    fn descriptor_attributes() {
        assert_fails(
            &edited(
                false,
                replace(
                    "AuthnRequestsSigned=\"true\"",
                    "AuthnRequestsSigned=\"false\"",
                ),
            ),
            &["sp-metadata.sp.authn-requests-signed.true"],
        );
        assert_fails(
            &edited(false, replace(" AuthnRequestsSigned=\"true\"", "")),
            &[
                "sp-metadata.sp.authn-requests-signed.present",
                "sp-metadata.sp.authn-requests-signed.true",
            ],
        );
        assert_fails(
            &edited(
                false,
                replace(
                    "WantAssertionsSigned=\"true\"",
                    "WantAssertionsSigned=\"false\"",
                ),
            ),
            &["sp-metadata.sp.want-assertions-signed.true"],
        );
        assert_fails(
            &edited(
                false,
                replace(
                    "protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\"",
                    "protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:1.1:protocol urn:oasis:names:tc:SAML:2.0:protocol\"",
                ),
            ),
            &["sp-metadata.sp.protocol-support.saml2"],
        );
        assert_fails(
            &edited(
                false,
                replace(
                    "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
                    "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
                ),
            ),
            &["sp-metadata.sp.name-id-format"],
        );
    }

    #[test]
    fn entity_attributes() {
        let md = edited(false, |m| {
            m.replacen(
                " entityID=",
                " validUntil=\"2020-01-01T00:00:00Z\" entityID=",
                1,
            )
        });
        assert_fails(&md, &["sp-metadata.entity.valid-until"]);
        // A query string in the entityID (the certificate names the entityID without it).
        let md = edited(false, |m| {
            m.replacen(
                "entityID=\"http://127.0.0.1:8000/metadata\"",
                "entityID=\"http://127.0.0.1:8000/metadata?x=1\"",
                1,
            )
        });
        assert_fails(
            &md,
            &[
                "sp-metadata.entity.id.no-query",
                "sp-metadata.cert.subject.uri.entity-id",
            ],
        );
    }

    #[test]
    fn key_descriptors() {
        let enc = format!(
            "<md:KeyDescriptor use=\"encryption\"><ds:KeyInfo xmlns:ds=\"{}\"><ds:KeyName>k</ds:KeyName></ds:KeyInfo></md:KeyDescriptor><md:SingleLogoutService",
            ns::DS
        );
        let md = edited(false, |m| m.replacen("<md:SingleLogoutService", &enc, 1));
        assert_fails(&md, &["sp-metadata.key.encryption.certificate"]);
    }

    #[test]
    fn certificate_profile_violations() {
        // A certificate outside the SPID SP profile: CA, wrong key usage, no policies,
        // no organizationIdentifier, an e-mail in the subject.
        use rcgen::{CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let pkey = openssl::pkey::PKey::from_rsa(rsa).unwrap();
        let kp = KeyPair::try_from(pkey.private_key_to_pkcs8().unwrap().as_slice()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "bad SP");
        dn.push(DnType::OrganizationName, "spid-harness TEST ONLY");
        dn.push(
            DnType::CustomDnType(vec![2, 5, 4, 83]),
            "http://127.0.0.1:8000/metadata",
        );
        dn.push(DnType::CountryName, "IT");
        dn.push(DnType::LocalityName, "Roma");
        dn.push(
            DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            "sp@example.org",
        );
        let mut p = CertificateParams::default();
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let cert = p.self_signed(&kp).unwrap();
        let bad = Credential::from_pem(
            pkey.private_key_to_pem_pkcs8().unwrap().as_slice(),
            cert.pem().as_bytes(),
        )
        .unwrap();
        let (md, good) = honest(false);
        let md = resign(&md.replace(&good.cert_base64(), &bad.cert_base64()), &bad);
        assert_fails(
            &md,
            &[
                "sp-metadata.cert.basic-constraints.not-critical",
                "sp-metadata.cert.basic-constraints.not-ca",
                "sp-metadata.cert.key-usage.required",
                "sp-metadata.cert.key-usage.forbidden",
                "sp-metadata.cert.policies.present",
                "sp-metadata.cert.policies.not-critical",
                "sp-metadata.cert.policies.agidcert",
                "sp-metadata.cert.policies.sector",
                "sp-metadata.cert.subject.organization-identifier",
                "sp-metadata.cert.subject.organization-identifier.matches",
            ],
        );
        assert_eq!(
            warned(&md),
            BTreeSet::from(["sp-metadata.cert.subject.no-email"])
        );
    }

    #[test]
    fn a_public_certificate_in_private_metadata() {
        let (md, private_cred) = honest(true);
        let public_cred = cred(&format!("{BASE}/metadata"), false);
        let md = resign(
            &md.replace(&private_cred.cert_base64(), &public_cred.cert_base64()),
            &public_cred,
        );
        assert_fails(
            &md,
            &[
                "sp-metadata.cert.policies.sector",
                "sp-metadata.cert.subject.organization-identifier",
                "sp-metadata.cert.subject.organization-identifier.matches",
            ],
        );
    }

    #[test]
    fn assertion_consumer_services() {
        assert_fails(
            &edited(false, replace(" isDefault=\"true\"", "")),
            &[
                "sp-metadata.acs.default.single",
                "sp-metadata.acs.default.index-zero",
            ],
        );
        assert_fails(
            &edited(
                false,
                replace(
                    "index=\"0\" isDefault=\"true\"",
                    "index=\"1\" isDefault=\"true\"",
                ),
            ),
            &["sp-metadata.acs.default.index-zero"],
        );
        let second = "<md:AssertionConsumerService index=\"0\" Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"http://127.0.0.1:8000/acs2\"/><md:AttributeConsumingService";
        assert_fails(
            &edited(false, |m| {
                m.replacen("<md:AttributeConsumingService", second, 1)
            }),
            &["sp-metadata.acs.index.unique"],
        );
        assert_fails(
            &edited(false, |m| {
                m.replacen(
                    &format!(
                        "Binding=\"{}\" Location=\"http://127.0.0.1:8000/acs\"",
                        ns::BINDING_POST
                    ),
                    &format!(
                        "Binding=\"{}\" Location=\"http://127.0.0.1:8000/acs\"",
                        ns::BINDING_REDIRECT
                    ),
                    1,
                )
            }),
            &["sp-metadata.acs.binding"],
        );
        assert_fails(
            &edited(
                false,
                replace(
                    "Location=\"http://127.0.0.1:8000/acs\"",
                    "Location=\"/acs\"",
                ),
            ),
            &["sp-metadata.acs.location"],
        );
    }

    #[test]
    fn single_logout_services() {
        let md = edited(false, |m| {
            let mut root = xml::parse(m, &Limits::default()).unwrap();
            root.child_mut(ns::MD, "SPSSODescriptor")
                .unwrap()
                .remove_children(ns::MD, "SingleLogoutService");
            root.to_xml()
        });
        assert_fails(&md, &["sp-metadata.slo.present"]);
        let md = edited(false, |m| {
            m.replacen(
                &format!("<md:SingleLogoutService Binding=\"{}\"", ns::BINDING_POST),
                "<md:SingleLogoutService Binding=\"urn:example:binding\"",
                1,
            )
        });
        assert_fails(&md, &["sp-metadata.slo.binding"]);
        let md = edited(false, |m| {
            m.replacen(
                "<md:SingleLogoutService Binding",
                "<md:SingleLogoutService ResponseLocation=\"slo\" Binding",
                1,
            )
        });
        assert_fails(&md, &["sp-metadata.slo.response-location"]);
    }

    #[test]
    fn attribute_consuming_services() {
        assert_fails(
            &edited(false, replace("Name=\"spidCode\"", "Name=\"nickname\"")),
            &["sp-metadata.attrs.requested.name"],
        );
        assert_fails(
            &edited(false, replace("Name=\"name\"", "Name=\"familyName\"")),
            &["sp-metadata.attrs.requested.unique"],
        );
        assert_fails(
            &edited(false, |m| {
                m.replacen(
                    &format!("Name=\"email\" NameFormat=\"{}\"", ns::ATTRNAME_BASIC),
                    "Name=\"email\" NameFormat=\"urn:example:format\"",
                    1,
                )
            }),
            &["sp-metadata.attrs.requested.name-format"],
        );
        let md = edited(
            false,
            replace(
                "<md:ServiceName xml:lang=\"it\"",
                "<md:ServiceName xml:lang=\"en\"",
            ),
        );
        assert_fails(&md, &[]);
        assert_eq!(
            warned(&md),
            BTreeSet::from(["sp-metadata.attrs.service.name.italian"])
        );
    }

    #[test]
    fn organization() {
        assert_fails(
            &edited(
                false,
                replace(
                    "<md:OrganizationURL xml:lang=\"it\"",
                    "<md:OrganizationURL xml:lang=\"en\"",
                ),
            ),
            &[
                "sp-metadata.org.languages.same",
                "sp-metadata.org.languages.italian",
            ],
        );
        let md = edited(false, |m| {
            let mut root = xml::parse(m, &Limits::default()).unwrap();
            root.child_mut(ns::MD, "Organization")
                .unwrap()
                .remove_children(ns::MD, "OrganizationDisplayName");
            root.to_xml()
        });
        assert_fails(
            &md,
            &[
                "sp-metadata.xsd.saml",
                "sp-metadata.org.display-name",
                "sp-metadata.org.languages.same",
                "sp-metadata.org.languages.italian",
            ],
        );
    }

    #[test]
    fn public_contact() {
        assert_fails(
            &edited(
                false,
                replace(
                    "<spid:IPACode>c_h501</spid:IPACode>",
                    "<spid:IPACode>c_h502</spid:IPACode>",
                ),
            ),
            &["sp-metadata.cert.subject.organization-identifier.matches"],
        );
        assert_fails(
            &edited(false, replace("<spid:IPACode>c_h501</spid:IPACode>", "")),
            &[
                "sp-metadata.contact.public.ipa-code",
                "sp-metadata.cert.subject.organization-identifier.matches",
            ],
        );
        assert_fails(
            &edited(false, replace("<spid:Public/>", "")),
            &[
                "sp-metadata.contact.other.kind",
                "sp-metadata.contact.other.kind.empty",
                "sp-metadata.cert.policies.sector",
                "sp-metadata.cert.subject.organization-identifier",
                "sp-metadata.cert.subject.organization-identifier.matches",
            ],
        );
        assert_fails(
            &edited(
                false,
                replace(
                    "<spid:Public/>",
                    "<spid:Public/><spid:PublicServicesFullAggregator/>",
                ),
            ),
            &["sp-metadata.contact.other.no-aggregator"],
        );
        assert_fails(
            &edited(false, |m| {
                let mail = "<md:EmailAddress>";
                assert!(m.contains(mail));
                let i = m.find(mail).unwrap() + mail.len();
                let j = i + m[i..].find('<').unwrap();
                format!("{}not-an-address{}", &m[..i], &m[j..])
            }),
            &["sp-metadata.contact.other.email.valid"],
        );
        assert_fails(
            &edited(false, replace("+390600000000", "+39 06 000000")),
            &["sp-metadata.contact.other.phone"],
        );
        assert_fails(
            &edited(
                false,
                replace(
                    "</md:Extensions><md:EmailAddress>",
                    "</md:Extensions><md:Company>Someone else</md:Company><md:EmailAddress>",
                ),
            ),
            &["sp-metadata.contact.other.company"],
        );
    }

    #[test]
    fn private_contacts() {
        let md = edited(true, |m| {
            let mut root = xml::parse(m, &Limits::default()).unwrap();
            root.children.retain(
                |n| !matches!(n, xml::Node::Element(e) if e.attr("contactType") == Some("billing")),
            );
            root.to_xml()
        });
        assert_fails(
            &md,
            &[
                "sp-metadata.contact.billing.single",
                "sp-metadata.contact.billing.extensions",
                "sp-metadata.contact.billing.cessionario",
                "sp-metadata.contact.billing.identification",
                "sp-metadata.contact.billing.email.present",
                "sp-metadata.contact.billing.email.valid",
            ],
        );
        assert_fails(
            &edited(
                true,
                replace(
                    "<spid:Private/>",
                    "<spid:IPACode>c_h501</spid:IPACode><spid:Private/>",
                ),
            ),
            &["sp-metadata.contact.private.no-ipa-code"],
        );
        let md = edited(
            true,
            replace(
                "<spid:VATNumber>IT12345678901</spid:VATNumber>",
                "<spid:VATNumber>XX12345678901</spid:VATNumber>",
            ),
        );
        assert_fails(
            &md,
            &[
                "sp-metadata.contact.other.vat-number",
                "sp-metadata.cert.subject.organization-identifier.matches",
            ],
        );
        assert_eq!(
            warned(&md),
            BTreeSet::from(["sp-metadata.contact.billing.identification.matches"])
        );
        assert_fails(
            &edited(
                true,
                replace("<spid:VATNumber>IT12345678901</spid:VATNumber>", ""),
            ),
            &[
                "sp-metadata.contact.private.vat-or-fiscal-code",
                "sp-metadata.cert.subject.organization-identifier.matches",
            ],
        );
        let b = edited(true, |m| {
            let mail = "<md:EmailAddress>fatturazione@example.org</md:EmailAddress>";
            assert!(m.contains(mail));
            m.replacen(mail, "<md:EmailAddress>fatturazione</md:EmailAddress>", 1)
        });
        assert_fails(&b, &["sp-metadata.contact.billing.email.valid"]);
    }

    #[test]
    fn production_urls_are_recommendations_off_loopback() {
        let (md, _) = sp_metadata("http://sp.example.org", false);
        assert_fails(&md, &[]);
        assert_eq!(
            warned(&md),
            BTreeSet::from([
                "sp-metadata.entity.id.https",
                "sp-metadata.acs.location.https",
                "sp-metadata.slo.location.https",
            ])
        );
        let (md, _) = sp_metadata("https://sp.example.org:8443", false);
        assert_fails(&md, &[]);
        assert_eq!(
            warned(&md),
            BTreeSet::from(["sp-metadata.endpoint.no-port"])
        );
    }

    #[test]
    fn missing_parts_are_recorded_not_dropped() {
        let (md, c) = honest(false);
        let n = metadata_checks(&md).0.len();
        let mut root = xml::parse(&md, &Limits::default()).unwrap();
        root.remove_children(ns::DS, "Signature");
        root.child_mut(ns::MD, "SPSSODescriptor")
            .unwrap()
            .remove_children(ns::MD, "KeyDescriptor");
        let md = dsig::sign_root(root, &c).unwrap();
        let (out, _) = metadata_checks(&md);
        // Every certificate check is still there, as "not evaluated".
        assert!(out.len() >= n - 2, "{} of {n}", out.len());
        let failed: BTreeSet<_> = out.iter().filter(|c| c.failed()).map(|c| c.id).collect();
        assert!(
            failed.contains("sp-metadata.key.signing.present"),
            "{failed:?}"
        );
        assert!(!failed.contains("sp-metadata.cert.key.type"), "{failed:?}");
    }

    #[test]
    fn details_are_words_not_rust_debug() {
        // Several defects at once: an ACS without index and Binding, no Organization, a
        // KeyDescriptor without certificate, an attribute service without index, a
        // RequestedAttribute without Name; signed and unsigned, public and private.
        let enc = format!(
            "<md:KeyDescriptor use=\"encryption\"><ds:KeyInfo xmlns:ds=\"{}\"><ds:KeyName>k</ds:KeyName></ds:KeyInfo></md:KeyDescriptor><md:SingleLogoutService",
            ns::DS
        );
        let edit = |m: &str| {
            let m = m.replacen("<md:SingleLogoutService", &enc, 1);
            let mut root = xml::parse(&m, &Limits::default()).unwrap();
            root.remove_children(ns::MD, "Organization");
            let sp = root.child_mut(ns::MD, "SPSSODescriptor").unwrap();
            let acs = sp.child_mut(ns::MD, "AssertionConsumerService").unwrap();
            acs.remove_attr("index");
            acs.remove_attr("Binding");
            let svc = sp.child_mut(ns::MD, "AttributeConsumingService").unwrap();
            svc.remove_attr("index");
            svc.child_mut(ns::MD, "RequestedAttribute")
                .unwrap()
                .remove_attr("Name");
            sp.remove_attr("AuthnRequestsSigned");
            root.to_xml()
        };
        for private in [false, true] {
            let signed = edited(private, edit);
            let mut unsigned = xml::parse(&signed, &Limits::default()).unwrap();
            unsigned.remove_children(ns::DS, "Signature");
            for md in [signed, unsigned.to_xml()] {
                let (out, _) = metadata_checks(&md);
                assert!(out.iter().any(|c| c.failed()));
                for c in &out {
                    for bad in ["Some(", "None", "\"", "[\""] {
                        assert!(
                            !c.detail.contains(bad),
                            "{} (private {private}): {bad} in {:?}",
                            c.id,
                            c.detail
                        );
                    }
                }
            }
        }
    }
}
