//! SPID attribute names (`attributi.rst`) and the value formats the rules fix.

/// The 23 attribute names an SP may request (the SPID allow-list).
pub const SPID_ATTRIBUTES: [&str; 23] = [
    "address",
    "companyName",
    "companyFiscalNumber",
    "countyOfBirth",
    "dateOfBirth",
    "digitalAddress",
    "email",
    "expirationDate",
    "familyName",
    "fiscalNumber",
    "gender",
    "idCard",
    "ivaCode",
    "mobilePhone",
    "name",
    "placeOfBirth",
    "registeredOffice",
    "spidCode",
    "domicileStreetAddress",
    "domicilePostalCode",
    "domicileMunicipality",
    "domicileProvince",
    "domicileNation",
];

/// Attributes whose values are `xs:date`; all others are `xs:string`.
pub const DATE_ATTRIBUTES: [&str; 2] = ["dateOfBirth", "expirationDate"];

/// True for a name in the SPID list.
pub fn is_spid_attribute(name: &str) -> bool {
    SPID_ATTRIBUTES.contains(&name)
}

/// The `xsi:type` of an attribute's values.
pub fn xsi_type(name: &str) -> &'static str {
    if DATE_ATTRIBUTES.contains(&name) {
        "xs:date"
    } else {
        "xs:string"
    }
}

/// Whether `v` is a `fiscalNumber` in the ETSI form `TINIT-<16 alphanumerics>`.
pub fn is_fiscal_number(v: &str) -> bool {
    v.strip_prefix("TINIT-")
        .is_some_and(|cf| cf.len() == 16 && cf.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Whether `v` is an `ivaCode` in the form `VATIT-<11 digits>`.
pub fn is_iva_code(v: &str) -> bool {
    v.strip_prefix("VATIT-")
        .is_some_and(|n| n.len() == 11 && n.chars().all(|c| c.is_ascii_digit()))
}

/// Namespace of the SPID OIDC attribute claims (AgID Tabella Attributi 1.3).
pub const OIDC_CLAIM_NS: &str = "https://attributes.eid.gov.it/";

/// The OpenID Connect claim name of a SPID SAML attribute whose value maps one to one
/// (string to string). Structured claims (`place_of_birth`, `address`, `document_details`,
/// `registered_office`) are built by [`oidc_claim_value`].
pub fn oidc_claim_name(saml_name: &str) -> Option<&'static str> {
    Some(match saml_name {
        "spidCode" => "https://attributes.eid.gov.it/spid_code",
        "name" => "given_name",
        "familyName" => "family_name",
        "dateOfBirth" => "birthdate",
        "gender" => "gender",
        "companyName" => "https://attributes.eid.gov.it/company_name",
        "fiscalNumber" => "https://attributes.eid.gov.it/fiscal_number",
        "companyFiscalNumber" => "https://attributes.eid.gov.it/company_fiscal_number",
        "ivaCode" => "https://attributes.eid.gov.it/vat_number",
        "mobilePhone" => "phone_number",
        "email" => "email",
        "digitalAddress" => "https://attributes.eid.gov.it/e_delivery_service",
        "expirationDate" => "https://attributes.eid.gov.it/eid_exp_date",
        _ => return None,
    })
}

/// The value of OIDC claim `claim` for a user whose SAML attributes are `attrs`, or None when
/// the user has none. `gender` becomes `male`/`female`; `place_of_birth` and `address` are
/// built from their SAML parts.
pub fn oidc_claim_value(
    claim: &str,
    attrs: &std::collections::BTreeMap<String, String>,
) -> Option<serde_json::Value> {
    use serde_json::{json, Value};
    let get = |k: &str| attrs.get(k).cloned();
    match claim {
        "place_of_birth" => {
            let locality = get("placeOfBirth")?;
            Some(json!({"locality": locality, "region": get("countyOfBirth")}))
        }
        // OIDC Core 5.1: the e-mail address the identity provider vouches for.
        "email_verified" => get("email").map(|_| json!(true)),
        "address" => {
            let street = get("domicileStreetAddress")?;
            Some(json!({
                "street_address": street,
                "postal_code": get("domicilePostalCode"),
                "locality": get("domicileMunicipality"),
                "region": get("domicileProvince"),
                "country_code": get("domicileNation"),
            }))
        }
        _ => {
            let (saml, value) = attrs
                .iter()
                .find(|(k, _)| oidc_claim_name(k) == Some(claim))?;
            Some(Value::String(match (saml.as_str(), value.as_str()) {
                ("gender", "M") => "male".into(),
                ("gender", "F") => "female".into(),
                _ => value.clone(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert!(is_fiscal_number("TINIT-RSSMRA80A01H501U"));
        assert!(!is_fiscal_number("RSSMRA80A01H501U"));
        assert!(is_iva_code("VATIT-12345678901"));
        assert!(!is_iva_code("VATIT-1234"));
        assert_eq!(xsi_type("dateOfBirth"), "xs:date");
        assert!(is_spid_attribute("spidCode") && !is_spid_attribute("foo"));
    }
}
