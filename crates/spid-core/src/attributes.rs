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
