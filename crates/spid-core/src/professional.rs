//! Avviso 18 (SPID professional use and legal persons): the `spid:Purpose` an SP may put in
//! its AuthnRequest Extensions, the four identity types, the attributes each type carries, and
//! [`MATRIX`], the one table that decides for each requested Purpose and the user's identity
//! type a login or SPID error nr30. The IdP answers by it, the SP judges the attribute set by
//! it, and `docs/avviso18.md` is generated from it ([`markdown`]).
//!
//! The matrix is Avviso SPID n.18 v2 as the AgID demo IdP implements it (`spid-saml-check`,
//! `idp_demo.js`: `purposeIDType` 1–4).

use serde::{Deserialize, Serialize};

/// A `spid:Purpose` value (Avviso 18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// `P`: professional use, of a natural person or on behalf of a legal person.
    P,
    /// `LP`: a legal person, as itself or through a professional on its behalf.
    LP,
    /// `PG`: professional use on behalf of a legal person.
    PG,
    /// `PF`: professional use of a natural person.
    PF,
    /// `PX`: any identity for professional or legal-person use.
    PX,
}

impl Purpose {
    /// Every value, in the Avviso's order.
    pub const ALL: [Purpose; 5] = [
        Purpose::P,
        Purpose::LP,
        Purpose::PG,
        Purpose::PF,
        Purpose::PX,
    ];

    /// The value as written in `spid:Purpose`.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::P => "P",
            Purpose::LP => "LP",
            Purpose::PG => "PG",
            Purpose::PF => "PF",
            Purpose::PX => "PX",
        }
    }

    /// Parses a `spid:Purpose` value (exact, case-sensitive); `None` for anything else.
    pub fn parse(s: &str) -> Option<Purpose> {
        Purpose::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// The identity type of a SPID user (Avviso 18; `purposeIDType` 1–4 of the AgID demo IdP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityType {
    /// 1: a natural person (ordinary SPID identity).
    #[default]
    Person,
    /// 2: a legal person (company data only).
    LegalPerson,
    /// 3: a natural person's identity for professional use.
    Professional,
    /// 4: a professional's identity on behalf of a legal person (person and company data).
    ProfessionalLegalPerson,
}

/// A natural person's identifying attributes.
const PERSON: &[&[&str]] = &[&["name"], &["familyName"], &["fiscalNumber"]];
/// A legal person's attributes: company name, fiscal number or VAT number, registered office.
const COMPANY: &[&[&str]] = &[
    &["companyName"],
    &["companyFiscalNumber", "ivaCode"],
    &["registeredOffice"],
];
/// A professional on behalf of a legal person: both sets.
const PERSON_AND_COMPANY: &[&[&str]] = &[
    &["name"],
    &["familyName"],
    &["fiscalNumber"],
    &["companyName"],
    &["companyFiscalNumber", "ivaCode"],
    &["registeredOffice"],
];

impl IdentityType {
    /// The four types, by `purposeIDType`.
    pub const ALL: [IdentityType; 4] = [
        IdentityType::Person,
        IdentityType::LegalPerson,
        IdentityType::Professional,
        IdentityType::ProfessionalLegalPerson,
    ];

    /// The AgID demo IdP's `purposeIDType` (1–4).
    pub fn number(self) -> u8 {
        match self {
            IdentityType::Person => 1,
            IdentityType::LegalPerson => 2,
            IdentityType::Professional => 3,
            IdentityType::ProfessionalLegalPerson => 4,
        }
    }

    /// The name used in users files (`identity_type`).
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityType::Person => "person",
            IdentityType::LegalPerson => "legal-person",
            IdentityType::Professional => "professional",
            IdentityType::ProfessionalLegalPerson => "professional-legal-person",
        }
    }

    /// What the type is, in words.
    pub fn label(self) -> &'static str {
        match self {
            IdentityType::Person => "natural person",
            IdentityType::LegalPerson => "legal person",
            IdentityType::Professional => "professional natural person",
            IdentityType::ProfessionalLegalPerson => "professional on behalf of a legal person",
        }
    }

    /// The attributes a Response for this type must carry: each inner list is one requirement
    /// met by any of its names (`companyFiscalNumber` or `ivaCode`).
    pub fn carries(self) -> &'static [&'static [&'static str]] {
        match self {
            IdentityType::Person | IdentityType::Professional => PERSON,
            IdentityType::LegalPerson => COMPANY,
            IdentityType::ProfessionalLegalPerson => PERSON_AND_COMPANY,
        }
    }

    /// The first requirement of [`IdentityType::carries`] none of `names` meets, as text
    /// (`companyFiscalNumber or ivaCode`); `None` when the set is complete.
    pub fn missing(self, names: &[&str]) -> Option<String> {
        self.carries()
            .iter()
            .find(|any| !any.iter().any(|n| names.contains(n)))
            .map(|any| any.join(" or "))
    }
}

/// One row of the matrix: a requested Purpose (or none) and the identity types that may log
/// in with it; every other type gets SPID error nr30.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The Purpose requested; `None` for a request without `spid:Purpose`.
    pub purpose: Option<Purpose>,
    /// What the SP asks for, in words.
    pub meaning: &'static str,
    /// The identity types that log in.
    pub admits: &'static [IdentityType],
    /// Where the row comes from.
    pub reference: &'static str,
}

use IdentityType::{LegalPerson, Person, Professional, ProfessionalLegalPerson};

/// The Avviso 18 matrix: six Purpose rows (absent, P, LP, PG, PF, PX) × four identity types.
pub const MATRIX: [Row; 6] = [
    Row {
        purpose: None,
        meaning: "an ordinary SPID login (no spid:Purpose)",
        admits: &[Person, Professional],
        reference: "Avviso 18 (no Purpose: an ordinary identity); spid-saml-check idp_demo.js",
    },
    Row {
        purpose: Some(Purpose::P),
        meaning: "professional use",
        admits: &[Professional, ProfessionalLegalPerson],
        reference: "Avviso 18 (Purpose P); spid-saml-check idp_demo.js",
    },
    Row {
        purpose: Some(Purpose::LP),
        meaning: "a legal person",
        admits: &[LegalPerson, ProfessionalLegalPerson],
        reference: "Avviso 18 (Purpose LP); spid-saml-check idp_demo.js",
    },
    Row {
        purpose: Some(Purpose::PG),
        meaning: "professional use on behalf of a legal person",
        admits: &[ProfessionalLegalPerson],
        reference: "Avviso 18 (Purpose PG); spid-saml-check idp_demo.js",
    },
    Row {
        purpose: Some(Purpose::PF),
        meaning: "professional use of a natural person",
        admits: &[Professional],
        reference: "Avviso 18 (Purpose PF); spid-saml-check idp_demo.js",
    },
    Row {
        purpose: Some(Purpose::PX),
        meaning: "any professional or legal-person identity",
        admits: &[LegalPerson, Professional, ProfessionalLegalPerson],
        reference: "Avviso 18 (Purpose PX); spid-saml-check idp_demo.js",
    },
];

/// The matrix row of a requested Purpose.
pub fn row(purpose: Option<Purpose>) -> &'static Row {
    MATRIX
        .iter()
        .find(|r| r.purpose == purpose)
        .unwrap_or(&MATRIX[0])
}

/// True when a user of type `t` logs in for a request with `purpose`; false means SPID error
/// nr30.
pub fn admits(purpose: Option<Purpose>, t: IdentityType) -> bool {
    row(purpose).admits.contains(&t)
}

/// Why a Response's attribute set fits no identity type the requested Purpose admits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the attributes carry no identity type Purpose {purpose} admits ({missing} missing for a {closest})")]
pub struct AttributeMismatch {
    /// The Purpose requested.
    pub purpose: &'static str,
    /// The admitted type whose set came closest (the fewest requirements unmet).
    pub closest: &'static str,
    /// Its first unmet requirement.
    pub missing: String,
}

/// The SP's check: with `purpose` requested, the attribute `names` of a login must be the whole
/// set of some type the row admits. Returns that type (the first in [`IdentityType::ALL`]
/// order whose set is carried, so company data reads as the legal-person types). Without a
/// Purpose there is nothing to check (an ordinary login: the AttributeConsumingService
/// decides), and every type is accepted as [`IdentityType::Person`].
pub fn identity_type_of(
    purpose: Option<Purpose>,
    names: &[&str],
) -> Result<IdentityType, AttributeMismatch> {
    let Some(p) = purpose else {
        return Ok(IdentityType::Person);
    };
    let admitted = row(purpose).admits;
    // Most specific first: a set with company data is a legal-person type.
    let mut by_need: Vec<IdentityType> = admitted.to_vec();
    by_need.sort_by_key(|t| std::cmp::Reverse(t.carries().len()));
    if let Some(t) = by_need.iter().find(|t| t.missing(names).is_none()) {
        return Ok(*t);
    }
    let unmet = |t: &IdentityType| {
        t.carries()
            .iter()
            .filter(|any| !any.iter().any(|n| names.contains(n)))
            .count()
    };
    let closest = admitted
        .iter()
        .min_by_key(|t| unmet(t))
        .copied()
        .unwrap_or(IdentityType::Person);
    Err(AttributeMismatch {
        purpose: p.as_str(),
        closest: closest.label(),
        missing: closest.missing(names).unwrap_or_default(),
    })
}

/// The matrix and the attribute sets as Markdown (`docs/avviso18.md`).
pub fn markdown() -> String {
    let mut s = String::from(
        "# Avviso 18: Purpose × identity type\n\n\
         Generated from `spid_core::professional::MATRIX` (`spid-harness avviso18 > docs/avviso18.md`).\n\
         For each `spid:Purpose` an SP requests and the user's identity type, our IdP answers with a\n\
         login (✓) or SPID error nr30 (✗, `response.status.nr30` at our SP). With a Purpose requested,\n\
         our SP also refuses a login whose attributes are not the whole set of a type the row admits\n\
         (`assertion.attributes.identity-type`).\n\n",
    );
    s.push_str("| Purpose | requests |");
    for t in IdentityType::ALL {
        s.push_str(&format!(" {} {} |", t.number(), t.label()));
    }
    s.push_str(" reference |\n|---|---|");
    for _ in IdentityType::ALL {
        s.push_str("---|");
    }
    s.push_str("---|\n");
    for r in &MATRIX {
        let p = r
            .purpose
            .map_or("(absent)".to_string(), |p| format!("`{}`", p.as_str()));
        s.push_str(&format!("| {p} | {} |", r.meaning));
        for t in IdentityType::ALL {
            s.push_str(if r.admits.contains(&t) {
                " ✓ |"
            } else {
                " ✗ nr30 |"
            });
        }
        s.push_str(&format!(" {} |\n", r.reference));
    }
    s.push_str("\n## Attributes each type carries\n\n| type | `identity_type` | attributes |\n|---|---|---|\n");
    for t in IdentityType::ALL {
        let attrs: Vec<String> = t
            .carries()
            .iter()
            .map(|any| {
                any.iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            })
            .collect();
        s.push_str(&format!(
            "| {} {} | `{}` | {} |\n",
            t.number(),
            t.label(),
            t.as_str(),
            attrs.join(", ")
        ));
    }
    s.push_str(SOURCES);
    s
}

/// Where the matrix comes from, and what could not be checked (the end of
/// `docs/avviso18.md`).
const SOURCES: &str = "
## Sources

- **The Avviso itself was not reachable.** Of Avviso SPID n.18 v2 (AgID, 13/11/2020) no copy
  of the text was found in the stored pages, documentation and code searched (queries on the
  Avviso's number and title, `spid:Purpose`, the Purpose values, nr30 and the identity types;
  2026-12-02), and the consolidated SPID technical rules in that material do not include it. Nothing in this file quotes it.
- **What the matrix was checked against**, cell by cell: the AgID demo IdP of `spid-saml-check`
  (`src/server/app/idp_demo.js`, the `purposeIDType` switch: absent → 1, 3; `P` → 3, 4; `LP` →
  2, 4; `PG` → 4; `PF` → 3; `PX` → 2, 3, 4; any other value refused) — every cell above agrees;
  `italia/Satosa-Saml2Spid#67` (the values `P`, `LP`, `PG`, `PF`, `PX` in
  `<samlp:Extensions xmlns:spid=\"https://spid.gov.it/saml-extensions\"><spid:Purpose>`, nr30 when
  the user's identity type is not the one requested); third-party articles that quote the Avviso's
  table of the four identity types and the services each is for (natural person: non-professional
  services; legal person: only the company's attributes; professional natural person: only the
  person's; professional for a legal person: both), which agree with the ✓ cells.
- **`SupportedPurposes` in metadata: not implemented.** No reachable source defines it. It is seen
  in use only: one IdP's EntityDescriptor in a copy of the SPID aggregated IdP metadata carries an
  `spid:SupportedPurposes` extension with unqualified `Purpose` children (beside
  `spid:SupportedAuthnContextClassRefs`), a registry metadata parser reads
  `md:EntityDescriptor/md:Extensions/spid:SupportedPurposes/Purpose`, and the SPID registry's IdP
  records have `extensions.supported_purpose`; a third-party note reports that few IdPs declare
  it. Without a defining text (element, namespace, placement, schema) our IdP does not publish it
  and check-idp does not judge it.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_has_one_row_per_purpose_and_its_cells() {
        assert_eq!(MATRIX.len(), 1 + Purpose::ALL.len());
        for p in Purpose::ALL {
            assert_eq!(row(Some(p)).purpose, Some(p));
            assert_eq!(Purpose::parse(p.as_str()), Some(p));
        }
        assert!(admits(None, Person));
        assert!(!admits(None, LegalPerson));
        assert!(admits(Some(Purpose::PG), ProfessionalLegalPerson));
        assert!(!admits(Some(Purpose::PG), Professional));
        assert!(!admits(Some(Purpose::PF), ProfessionalLegalPerson));
        assert!(!admits(Some(Purpose::PX), Person));
        let cells: usize = MATRIX.iter().map(|r| r.admits.len()).sum();
        assert_eq!(cells, 2 + 2 + 2 + 1 + 1 + 3);
    }

    #[test]
    fn the_sp_reads_the_type_from_the_attribute_set() {
        let person = ["name", "familyName", "fiscalNumber"];
        let company = ["companyName", "ivaCode", "registeredOffice"];
        let both = [&person[..], &company[..]].concat();
        assert_eq!(
            identity_type_of(Some(Purpose::LP), &company),
            Ok(LegalPerson)
        );
        assert_eq!(
            identity_type_of(Some(Purpose::LP), &both),
            Ok(ProfessionalLegalPerson)
        );
        assert_eq!(
            identity_type_of(Some(Purpose::PF), &person),
            Ok(Professional)
        );
        let e = identity_type_of(Some(Purpose::PG), &person).unwrap_err();
        assert_eq!(e.missing, "companyName");
        assert_eq!(
            e.to_string(),
            "the attributes carry no identity type Purpose PG admits (companyName missing for a professional on behalf of a legal person)"
        );
        assert!(identity_type_of(Some(Purpose::LP), &person).is_err());
        assert_eq!(identity_type_of(None, &[]), Ok(Person));
    }
}
