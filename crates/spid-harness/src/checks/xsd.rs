//! XML Schema validation (libxml2) against the SAML 2.0 schemas and the SPID extensions.
//!
//! The OASIS schemas come from the Debian packages `opensaml-schemas` (SAML 2.0 assertion,
//! protocol, metadata) and `xmltooling-schemas` (xml.xsd, XML Signature, XML Encryption);
//! the SPID metadata extensions, the private SPs' invoicing extensions and the CIE SP contact
//! extensions are this project's
//! own schemas (`crates/spid-harness/schemas/`, embedded). Validation is offline: an in-memory
//! driver schema imports every namespace from a local path first, so libxml2 skips the
//! `http://` schema locations the OASIS files name for the same namespaces.
//!
//! One schema set is compiled per process (it holds every namespace, so any SAML root
//! validates against it) and guarded by a mutex: libxml2's schema objects are not `Sync`, and
//! a validation context must not be used by two threads at once.

use libxml::parser::{Parser, ParserOptions};
use libxml::schemas::{SchemaParserContext, SchemaValidationContext};
use spid_core::saml::ns;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Which document kind is validated (the schema set is the same; the root must fit the kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// SAML 2.0 metadata (`md:EntityDescriptor` or `md:EntitiesDescriptor`) with the SPID
    /// and invoicing extensions.
    Metadata,
    /// A SAML 2.0 protocol message (`samlp:*`, e.g. an AuthnRequest).
    Protocol,
}

/// Directory of the OASIS SAML 2.0 schemas (Debian `opensaml-schemas`).
pub const OPENSAML_DIR: &str = "/usr/share/xml/opensaml";
/// Directory of xml.xsd, XML Signature and XML Encryption (Debian `xmltooling-schemas`).
pub const XMLTOOLING_DIR: &str = "/usr/share/xml/xmltooling";

/// Our schema of the SPID metadata extensions (namespace [`ns::SPID`]).
pub const SPID_EXTENSIONS_XSD: &str = include_str!("../../schemas/spid-extensions.xsd");
/// Our schema of a private SP's billing-contact extensions (namespace [`INVOICING_NS`]).
pub const SPID_INVOICING_XSD: &str = include_str!("../../schemas/spid-invoicing.xsd");
/// Our schema of the CIE SP metadata extensions (namespace
/// [`spid_core::cie::SAML_EXTENSIONS_NS`], the administrative contact's `cie:` elements).
pub const CIE_EXTENSIONS_XSD: &str = include_str!("../../schemas/cie-extensions.xsd");
/// Namespace of the invoicing extensions (the billing contact of a private SP).
pub const INVOICING_NS: &str = "https://spid.gov.it/invoicing-extensions";

/// The imports, in order: (namespace, file, Debian package or None for ours).
fn imports(ours: &Path) -> Vec<(&'static str, PathBuf, Option<&'static str>)> {
    let os = |f: &str| Path::new(OPENSAML_DIR).join(f);
    let xt = |f: &str| Path::new(XMLTOOLING_DIR).join(f);
    vec![
        (
            "http://www.w3.org/XML/1998/namespace",
            xt("xml.xsd"),
            Some("xmltooling-schemas"),
        ),
        (
            ns::DS,
            xt("xmldsig-core-schema.xsd"),
            Some("xmltooling-schemas"),
        ),
        (
            "http://www.w3.org/2001/04/xmlenc#",
            xt("xenc-schema.xsd"),
            Some("xmltooling-schemas"),
        ),
        (
            ns::SAML,
            os("saml-schema-assertion-2.0.xsd"),
            Some("opensaml-schemas"),
        ),
        (
            ns::SAMLP,
            os("saml-schema-protocol-2.0.xsd"),
            Some("opensaml-schemas"),
        ),
        (
            ns::MD,
            os("saml-schema-metadata-2.0.xsd"),
            Some("opensaml-schemas"),
        ),
        (ns::SPID, ours.join("spid-extensions.xsd"), None),
        (INVOICING_NS, ours.join("spid-invoicing.xsd"), None),
        (
            spid_core::cie::SAML_EXTENSIONS_NS,
            ours.join("cie-extensions.xsd"),
            None,
        ),
    ]
}

/// The compiled schema set, or why it could not be built.
struct Compiled(Mutex<SchemaValidationContext>);

// SAFETY: the validation context (and the schema it owns) is only ever used while the mutex
// is held, so no two threads touch the libxml2 objects at once; libxml2 objects carry no
// thread affinity (only concurrent use is unsafe).
#[allow(unsafe_code)]
unsafe impl Send for Compiled {}
#[allow(unsafe_code)]
unsafe impl Sync for Compiled {}

/// Why the schema set could not be built.
#[derive(Debug, thiserror::Error)]
enum SchemaSetError {
    /// Our embedded schemas could not be written out.
    #[error("{}: {source}", path.display())]
    Write {
        /// The directory or file.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// Schema files are missing: each path, with the Debian package that provides it (none
    /// for ours).
    #[error("{}", missing_list(.0))]
    Missing(Vec<(PathBuf, Option<&'static str>)>),
    /// libxml2 does not compile the schema set (its errors, described).
    #[error("the schema set does not compile: {}", .0.join("; "))]
    NotCompiled(Vec<String>),
}

/// The missing files as one line: `path missing: install the Debian package pkg; …`.
fn missing_list(missing: &[(PathBuf, Option<&'static str>)]) -> String {
    let lines: Vec<String> = missing
        .iter()
        .map(|(p, pkg)| match pkg {
            Some(pkg) => format!("{} missing: install the Debian package {pkg}", p.display()),
            None => format!("{} missing", p.display()),
        })
        .collect();
    lines.join("; ")
}

fn compiled() -> &'static Result<Compiled, SchemaSetError> {
    static SCHEMA: OnceLock<Result<Compiled, SchemaSetError>> = OnceLock::new();
    SCHEMA.get_or_init(compile)
}

/// Writes our embedded schemas where libxml2 can import them from (a per-process directory).
fn write_ours() -> Result<PathBuf, SchemaSetError> {
    let dir = std::env::temp_dir().join(format!("spid-harness-xsd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| SchemaSetError::Write {
        path: dir.clone(),
        source,
    })?;
    for (name, text) in [
        ("spid-extensions.xsd", SPID_EXTENSIONS_XSD),
        ("spid-invoicing.xsd", SPID_INVOICING_XSD),
        ("cie-extensions.xsd", CIE_EXTENSIONS_XSD),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|source| SchemaSetError::Write { path: p, source })?;
    }
    Ok(dir)
}

fn compile() -> Result<Compiled, SchemaSetError> {
    let ours = write_ours()?;
    let list = imports(&ours);
    let missing: Vec<(PathBuf, Option<&'static str>)> = list
        .iter()
        .filter(|(_, p, _)| !p.is_file())
        .map(|(_, p, pkg)| (p.clone(), *pkg))
        .collect();
    if !missing.is_empty() {
        return Err(SchemaSetError::Missing(missing));
    }
    let mut driver = String::from(
        "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" \
         targetNamespace=\"urn:spid-harness:xsd-driver\">",
    );
    for (namespace, path, _) in &list {
        driver.push_str(&format!(
            "<xs:import namespace=\"{namespace}\" schemaLocation=\"{}\"/>",
            spid_core::saml::xml::escape_attr(&path.display().to_string())
        ));
    }
    driver.push_str("</xs:schema>");
    let mut parser = SchemaParserContext::from_buffer(driver.as_bytes());
    let ctx = SchemaValidationContext::from_parser(&mut parser)
        .map_err(|errs| SchemaSetError::NotCompiled(errs.iter().map(describe).collect()))?;
    Ok(Compiled(Mutex::new(ctx)))
}

/// Known namespaces written as their usual prefixes in messages.
const PREFIXES: [(&str, &str); 9] = [
    (ns::MD, "md"),
    (ns::SAMLP, "samlp"),
    (ns::SAML, "saml"),
    (ns::DS, "ds"),
    ("http://www.w3.org/2001/04/xmlenc#", "xenc"),
    (ns::SPID, "spid"),
    (INVOICING_NS, "fpa"),
    (spid_core::cie::SAML_EXTENSIONS_NS, "cie"),
    ("http://www.w3.org/XML/1998/namespace", "xml"),
];

/// A libxml2 error as one readable line: `line N: Element 'md:X': what is wrong`.
fn describe(e: &libxml::error::StructuredError) -> String {
    let mut msg = e
        .message
        .clone()
        .unwrap_or_else(|| format!("libxml2 error {}", e.code))
        .trim()
        .to_string();
    for (uri, prefix) in PREFIXES {
        msg = msg.replace(&format!("{{{uri}}}"), &format!("{prefix}:"));
    }
    match (e.line, &e.filename) {
        (Some(l), Some(f)) if !f.is_empty() && f != "noname.xml" => format!("{f}:{l}: {msg}"),
        (Some(l), _) => format!("line {l}: {msg}"),
        _ => msg,
    }
}

/// Validates `xml` against the SAML 2.0 schemas (with XML Signature and Encryption) and the
/// SPID extensions; the root must be a metadata document or a protocol message as `schema`
/// says. Errors are readable lines (line, element, what is wrong). A missing schema file is
/// an error naming the path and the Debian package that provides it.
pub fn validate(xml: &str, schema: Schema) -> Result<(), Vec<String>> {
    let compiled = compiled().as_ref().map_err(|e| vec![e.to_string()])?;
    let doc = Parser::default()
        .parse_string_with_options(
            xml,
            ParserOptions {
                no_net: true,
                ..ParserOptions::default()
            },
        )
        .map_err(|e| vec![format!("not well-formed XML: {e:?}")])?;
    let root = doc
        .get_root_element()
        .ok_or_else(|| vec!["no root element".to_string()])?;
    let root_ns = root
        .get_namespace()
        .map(|n| n.get_href())
        .unwrap_or_default();
    let root_ok = match schema {
        Schema::Metadata => {
            root_ns == ns::MD
                && matches!(
                    root.get_name().as_str(),
                    "EntityDescriptor" | "EntitiesDescriptor"
                )
        }
        Schema::Protocol => root_ns == ns::SAMLP,
    };
    if !root_ok {
        return Err(vec![format!(
            "root element {{{root_ns}}}{} is not a {} document",
            root.get_name(),
            match schema {
                Schema::Metadata => "SAML metadata",
                Schema::Protocol => "SAML protocol",
            }
        )]);
    }
    let mut ctx = compiled.0.lock().unwrap_or_else(|p| p.into_inner());
    let result = ctx.validate_document(&doc);
    // The context accumulates errors across calls: leave it empty for the next caller.
    let _ = ctx.drain_errors();
    drop(ctx);
    result.map_err(|errs| {
        let mut out: Vec<String> = errs.iter().map(describe).collect();
        out.dedup();
        if out.is_empty() {
            out.push("schema validation failed".into());
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn our_metadata() -> String {
        let creds = crate::runner::Credentials::embedded().unwrap();
        spid_sp::ServiceProvider::new(spid_sp::SpConfig::new("http://127.0.0.1:8000", creds.sp))
            .unwrap()
            .metadata_xml()
            .to_string()
    }

    #[test]
    fn our_metadata_is_valid() {
        validate(&our_metadata(), Schema::Metadata).unwrap();
    }

    #[test]
    fn an_unexpected_element_is_reported_with_line_and_name() {
        let md = our_metadata().replacen("<md:NameIDFormat>", "<md:Bogus/>\n<md:NameIDFormat>", 1);
        let errs = validate(&md, Schema::Metadata).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.starts_with("line ") && e.contains("md:Bogus")),
            "{errs:?}"
        );
    }

    #[test]
    fn a_missing_required_attribute_fails() {
        let md = our_metadata().replacen(" protocolSupportEnumeration=", " x=", 1);
        let errs = validate(&md, Schema::Metadata).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.contains("protocolSupportEnumeration")),
            "{errs:?}"
        );
    }

    #[test]
    fn spid_extensions_are_checked_laxly() {
        let md = our_metadata().replacen("<spid:Public/>", "<spid:Public>x</spid:Public>", 1);
        let errs = validate(&md, Schema::Metadata).unwrap_err();
        assert!(errs.iter().any(|e| e.contains("spid:Public")), "{errs:?}");
        // An element of an unknown foreign namespace is skipped (lax).
        let md = our_metadata().replacen(
            "<spid:Public/>",
            "<spid:Public/><x:Other xmlns:x=\"urn:x\">any</x:Other>",
            1,
        );
        validate(&md, Schema::Metadata).unwrap();
    }

    #[test]
    fn the_root_must_fit_the_kind() {
        let errs = validate(&our_metadata(), Schema::Protocol).unwrap_err();
        assert!(errs[0].contains("not a SAML protocol"), "{errs:?}");
    }

    #[test]
    fn protocol_messages_validate() {
        let ok = format!(
            "<samlp:AuthnRequest xmlns:samlp=\"{}\" xmlns:saml=\"{}\" ID=\"_a\" Version=\"2.0\" \
             IssueInstant=\"2025-01-01T00:00:00Z\"><saml:Issuer>x</saml:Issuer></samlp:AuthnRequest>",
            ns::SAMLP,
            ns::SAML
        );
        validate(&ok, Schema::Protocol).unwrap();
        let bad = ok.replace(" Version=\"2.0\"", "");
        let errs = validate(&bad, Schema::Protocol).unwrap_err();
        assert!(errs.iter().any(|e| e.contains("Version")), "{errs:?}");
    }

    #[test]
    fn validation_is_usable_from_many_threads() {
        let md = our_metadata();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let md = md.clone();
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        validate(&md, Schema::Metadata).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
