//! A small, strict XML tree for SAML messages.
//!
//! Hand-rolled on quick-xml because SPID needs things generic XML crates do not give together:
//! refusal of DTDs, entities and trailing content; bounded depth and size; namespace-resolved
//! names while keeping the original prefixes and declarations, so that a parsed and re-serialised
//! signed document still canonicalises to the same octets (the IdP's post-signature mutations
//! rely on that); and comments kept as nodes so comment-injection can be detected.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// Resource bounds applied while parsing network input.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum input size in bytes.
    pub max_bytes: usize,
    /// Maximum element nesting depth.
    pub max_depth: usize,
    /// Maximum number of elements.
    pub max_elements: usize,
    /// Maximum attributes on one element.
    pub max_attributes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 256 * 1024,
            max_depth: 48,
            max_elements: 4096,
            max_attributes: 64,
        }
    }
}

/// Why a document was refused by the strict parser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Not well-formed (or uses an undeclared prefix).
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// A `<!DOCTYPE>` is present (XXE, billion laughs).
    #[error("DTD is forbidden")]
    Dtd,
    /// A reference to an entity other than the five predefined ones.
    #[error("entity reference &{0}; is forbidden")]
    Entity(String),
    /// A processing instruction other than the XML declaration.
    #[error("processing instruction is forbidden")]
    ProcessingInstruction,
    /// A size, depth or count bound was exceeded.
    #[error("limit exceeded: {0}")]
    Limit(&'static str),
}

/// A node of the tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// An element.
    Element(Element),
    /// Character data (unescaped).
    Text(String),
    /// A comment (kept so injection inside signed values can be detected).
    Comment(String),
}

/// An element with its namespace resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    /// The qualified name as written (`saml:Assertion`).
    pub qname: String,
    /// The resolved namespace URI, if any.
    pub ns: Option<String>,
    /// Attributes in document order, names as written, values unescaped; namespace
    /// declarations (`xmlns`, `xmlns:p`) included.
    pub attrs: Vec<(String, String)>,
    /// Children in document order.
    pub children: Vec<Node>,
}

impl Element {
    /// A new element named `qname` in namespace `ns`; the caller adds `xmlns` declarations.
    pub fn new(qname: &str, ns: Option<&str>) -> Self {
        Element {
            qname: qname.to_string(),
            ns: ns.map(str::to_string),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Builder: adds an attribute.
    pub fn with_attr(mut self, name: &str, value: impl Into<String>) -> Self {
        self.attrs.push((name.to_string(), value.into()));
        self
    }

    /// Builder: adds a child element.
    pub fn with_child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Builder: adds a text child.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// The local part of the name.
    pub fn local(&self) -> &str {
        self.qname.rsplit(':').next().unwrap_or(&self.qname)
    }

    /// The prefix, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.qname.split_once(':').map(|(p, _)| p)
    }

    /// True when the element is `{ns}local`.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local() == local && self.ns.as_deref() == Some(ns)
    }

    /// An attribute value by name as written (unprefixed attributes are in no namespace).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets (or adds) an attribute.
    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((name.to_string(), value)),
        }
    }

    /// Removes an attribute; returns whether it was there.
    pub fn remove_attr(&mut self, name: &str) -> bool {
        let before = self.attrs.len();
        self.attrs.retain(|(n, _)| n != name);
        before != self.attrs.len()
    }

    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// Mutable child elements.
    pub fn elements_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// Child elements named `{ns}local`.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        local: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.is(ns, local))
    }

    /// The first child element named `{ns}local`.
    pub fn child(&self, ns: &str, local: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(ns, local))
    }

    /// The first child element named `{ns}local`, mutably.
    pub fn child_mut(&mut self, ns: &str, local: &str) -> Option<&mut Element> {
        self.elements_mut().find(|e| e.is(ns, local))
    }

    /// Removes every child element named `{ns}local`; returns how many were removed.
    pub fn remove_children(&mut self, ns: &str, local: &str) -> usize {
        let before = self.children.len();
        self.children
            .retain(|n| !matches!(n, Node::Element(e) if e.is(ns, local)));
        before - self.children.len()
    }

    /// The concatenated text of the direct text children (comments skipped).
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s
    }

    /// Replaces all children with one text node.
    pub fn set_text(&mut self, text: impl Into<String>) {
        self.children = vec![Node::Text(text.into())];
    }

    /// True if this element or any descendant holds a comment.
    pub fn has_comment(&self) -> bool {
        self.children.iter().any(|n| match n {
            Node::Comment(_) => true,
            Node::Element(e) => e.has_comment(),
            Node::Text(_) => false,
        })
    }

    /// Every descendant element (depth first, document order), excluding self.
    pub fn descendants(&self) -> Vec<&Element> {
        let mut out = Vec::new();
        fn walk<'a>(e: &'a Element, out: &mut Vec<&'a Element>) {
            for c in e.elements() {
                out.push(c);
                walk(c, out);
            }
        }
        walk(self, &mut out);
        out
    }

    /// Index (among `children`) of the first child element named `{ns}local`.
    pub fn child_index(&self, ns: &str, local: &str) -> Option<usize> {
        self.children
            .iter()
            .position(|n| matches!(n, Node::Element(e) if e.is(ns, local)))
    }

    /// Serialises the element (no XML declaration).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.qname);
        for (n, v) in &self.attrs {
            out.push(' ');
            out.push_str(n);
            out.push_str("=\"");
            escape_attr_into(v, out);
            out.push('"');
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for c in &self.children {
            match c {
                Node::Element(e) => e.write(out),
                Node::Text(t) => escape_text_into(t, out),
                Node::Comment(t) => {
                    out.push_str("<!--");
                    out.push_str(t);
                    out.push_str("-->");
                }
            }
        }
        out.push_str("</");
        out.push_str(&self.qname);
        out.push('>');
    }
}

/// Escapes text content.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_text_into(s, &mut out);
    out
}

/// Escapes an attribute value (double-quoted).
pub fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_attr_into(s, &mut out);
    out
}

/// Appends `s` to `out` as text content: `&`, `<`, `>` and CR escaped (the escapes of
/// canonical XML, which a parser reads back as the same text).
pub(crate) fn escape_text_into(s: &str, out: &mut String) {
    escape_into(s, out, |b| match b {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'\r' => Some("&#xD;"),
        _ => None,
    });
}

/// Appends `s` to `out` as a double-quoted attribute value: `&`, `<`, `"`, tab, LF and CR
/// escaped (canonical XML's set: whitespace survives attribute-value normalisation).
pub(crate) fn escape_attr_into(s: &str, out: &mut String) {
    escape_into(s, out, |b| match b {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'"' => Some("&quot;"),
        b'\t' => Some("&#x9;"),
        b'\n' => Some("&#xA;"),
        b'\r' => Some("&#xD;"),
        _ => None,
    });
}

/// Copies `s` into `out` a run at a time, replacing the bytes `rep` names. Every byte replaced
/// is ASCII, so each run ends on a character boundary.
#[inline]
fn escape_into(s: &str, out: &mut String, rep: impl Fn(u8) -> Option<&'static str>) {
    out.reserve(s.len());
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if let Some(r) = rep(b) {
            out.push_str(&s[start..i]);
            out.push_str(r);
            start = i + 1;
        }
    }
    out.push_str(&s[start..]);
}

/// Parses `input` strictly: one root element, optional XML declaration, no DTD, no entity
/// other than the predefined ones, no processing instruction, nothing but whitespace or
/// comments outside the root, every prefix declared, within `limits`.
pub fn parse(input: &str, limits: &Limits) -> Result<Element, XmlError> {
    if input.len() > limits.max_bytes {
        return Err(XmlError::Limit("document size"));
    }
    let mut reader = Reader::from_str(input);
    reader.config_mut().trim_text(false);
    reader.config_mut().check_end_names = true;

    // Stack of open elements and, for each, the namespace bindings it declared.
    let mut stack: Vec<(Element, Vec<(String, String)>)> = Vec::new();
    let mut scopes: Vec<(String, String)> = vec![(
        "xml".to_string(),
        "http://www.w3.org/XML/1998/namespace".to_string(),
    )];
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    let mut seen_decl = false;
    let mut seen_anything = false;

    loop {
        let ev = reader
            .read_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        match ev {
            Event::Decl(_) => {
                if seen_anything || seen_decl {
                    return Err(XmlError::Malformed("misplaced XML declaration".into()));
                }
                seen_decl = true;
            }
            Event::DocType(_) => return Err(XmlError::Dtd),
            Event::PI(_) => return Err(XmlError::ProcessingInstruction),
            Event::Start(s) | Event::Empty(s) if root.is_some() => {
                let _ = s;
                return Err(XmlError::Malformed("content after the root element".into()));
            }
            Event::Start(s) => {
                seen_anything = true;
                count += 1;
                if count > limits.max_elements {
                    return Err(XmlError::Limit("element count"));
                }
                if stack.len() + 1 > limits.max_depth {
                    return Err(XmlError::Limit("nesting depth"));
                }
                let (el, declared) = open(&s, &mut scopes, limits)?;
                stack.push((el, declared));
            }
            Event::Empty(s) => {
                seen_anything = true;
                count += 1;
                if count > limits.max_elements {
                    return Err(XmlError::Limit("element count"));
                }
                let (el, declared) = open(&s, &mut scopes, limits)?;
                scopes.truncate(scopes.len() - declared.len());
                close(el, &mut stack, &mut root);
            }
            Event::End(_) => {
                let (el, declared) = stack
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("unbalanced end tag".into()))?;
                scopes.truncate(scopes.len() - declared.len());
                close(el, &mut stack, &mut root);
            }
            Event::Text(t) => {
                let text = t
                    .xml10_content()
                    .map_err(|e| XmlError::Malformed(e.to_string()))?;
                push_text(&mut stack, &text, root.is_some())?;
            }
            Event::CData(c) => {
                let text = c.decode().map_err(|e| XmlError::Malformed(e.to_string()))?;
                match stack.last_mut() {
                    Some((el, _)) => append_text(el, &text),
                    None => return Err(XmlError::Malformed("CDATA outside the root".into())),
                }
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| XmlError::Malformed(e.to_string()))?
                        .map(String::from)
                } else {
                    let name = r.decode().map_err(|e| XmlError::Malformed(e.to_string()))?;
                    match name.as_ref() {
                        "amp" => Some("&".into()),
                        "lt" => Some("<".into()),
                        "gt" => Some(">".into()),
                        "quot" => Some("\"".into()),
                        "apos" => Some("'".into()),
                        other => return Err(XmlError::Entity(other.to_string())),
                    }
                };
                let text = resolved.ok_or_else(|| XmlError::Malformed("bad char ref".into()))?;
                push_text(&mut stack, &text, root.is_some())?;
            }
            Event::Comment(c) => {
                let text = c.decode().map_err(|e| XmlError::Malformed(e.to_string()))?;
                if let Some((el, _)) = stack.last_mut() {
                    el.children.push(Node::Comment(text.into_owned()));
                }
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed("unclosed element".into()));
    }
    root.ok_or_else(|| XmlError::Malformed("no root element".into()))
}

fn push_text(
    stack: &mut [(Element, Vec<(String, String)>)],
    text: &str,
    after_root: bool,
) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some((el, _)) => {
            append_text(el, text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None if after_root => Err(XmlError::Malformed("content after the root element".into())),
        None => Err(XmlError::Malformed("text outside the root element".into())),
    }
}

fn append_text(el: &mut Element, text: &str) {
    if let Some(Node::Text(prev)) = el.children.last_mut() {
        prev.push_str(text);
    } else {
        el.children.push(Node::Text(text.to_string()));
    }
}

fn close(el: Element, stack: &mut [(Element, Vec<(String, String)>)], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some((parent, _)) => parent.children.push(Node::Element(el)),
        None => *root = Some(el),
    }
}

fn open(
    s: &BytesStart<'_>,
    scopes: &mut Vec<(String, String)>,
    limits: &Limits,
) -> Result<(Element, Vec<(String, String)>), XmlError> {
    let qname = std::str::from_utf8(s.name().as_ref())
        .map_err(|_| XmlError::Malformed("non UTF-8 name".into()))?
        .to_string();
    // `< />` reads as an element with no name, which would serialise as `</>` (fuzz).
    if qname.is_empty() || qname.starts_with(':') || qname.ends_with(':') {
        return Err(XmlError::Malformed(format!("element name {qname:?}")));
    }
    let mut attrs = Vec::new();
    let mut declared = Vec::new();
    for a in s.attributes() {
        let a = a.map_err(|e| XmlError::Malformed(e.to_string()))?;
        if attrs.len() >= limits.max_attributes {
            return Err(XmlError::Limit("attribute count"));
        }
        let name = std::str::from_utf8(a.key.as_ref())
            .map_err(|_| XmlError::Malformed("non UTF-8 attribute name".into()))?
            .to_string();
        let value =
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| match e {
                    quick_xml::Error::Escape(
                        quick_xml::escape::EscapeError::UnrecognizedEntity(_, name),
                    ) => XmlError::Entity(name),
                    other => XmlError::Malformed(other.to_string()),
                })?;
        if name == "xmlns" {
            declared.push((String::new(), value.to_string()));
        } else if let Some(p) = name.strip_prefix("xmlns:") {
            declared.push((p.to_string(), value.to_string()));
        }
        attrs.push((name, value.into_owned()));
    }
    scopes.extend(declared.iter().cloned());
    let prefix = qname.split_once(':').map(|(p, _)| p).unwrap_or("");
    let ns = scopes
        .iter()
        .rev()
        .find(|(p, _)| p == prefix)
        .map(|(_, u)| u.clone())
        .filter(|u| !u.is_empty());
    if ns.is_none() && !prefix.is_empty() {
        return Err(XmlError::Malformed(format!("undeclared prefix {prefix}")));
    }
    for (n, _) in &attrs {
        if let Some((p, _)) = n.split_once(':') {
            if p != "xmlns" && !scopes.iter().any(|(sp, _)| sp == p) {
                return Err(XmlError::Malformed(format!("undeclared prefix {p}")));
            }
        }
    }
    Ok((
        Element {
            qname,
            ns,
            attrs,
            children: Vec::new(),
        },
        declared,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Element, XmlError> {
        parse(s, &Limits::default())
    }

    #[test]
    fn parses_namespaces_and_text() {
        let e = p(r#"<?xml version="1.0"?><a:R xmlns:a="urn:a" ID="x"><a:B>t&amp;u&#65;</a:B><C xmlns="urn:c"/></a:R>"#).unwrap();
        assert!(e.is("urn:a", "R"));
        assert_eq!(e.attr("ID"), Some("x"));
        assert_eq!(e.child("urn:a", "B").unwrap().text(), "t&uA");
        assert!(e.child("urn:c", "C").is_some());
    }

    #[test]
    fn refuses_dtd() {
        let s = r#"<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>"#;
        assert_eq!(p(s), Err(XmlError::Dtd));
    }

    #[test]
    fn refuses_unknown_entity() {
        assert_eq!(p("<r>&x;</r>"), Err(XmlError::Entity("x".into())));
        assert_eq!(p(r#"<r a="&x;"/>"#), Err(XmlError::Entity("x".into())));
    }

    #[test]
    fn refuses_trailing_content_and_pi() {
        assert!(matches!(p("<r/><r/>"), Err(XmlError::Malformed(_))));
        assert!(matches!(p("<r/>junk"), Err(XmlError::Malformed(_))));
        assert_eq!(
            p("<r><?xml-stylesheet x?></r>"),
            Err(XmlError::ProcessingInstruction)
        );
    }

    #[test]
    fn refuses_undeclared_prefix_and_mismatched_tags() {
        assert!(matches!(p("<a:r/>"), Err(XmlError::Malformed(_))));
        assert!(matches!(p("<r></s>"), Err(XmlError::Malformed(_))));
        assert!(matches!(p("<r>"), Err(XmlError::Malformed(_))));
    }

    #[test]
    fn enforces_limits() {
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert_eq!(p(&deep), Err(XmlError::Limit("nesting depth")));
        let l = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        assert_eq!(
            parse("<r>0123456789</r>", &l),
            Err(XmlError::Limit("document size"))
        );
    }

    #[test]
    fn keeps_comments_and_round_trips() {
        let s = r#"<r xmlns="urn:x" a="1&quot;"><n>ab<!--c-->cd</n></r>"#;
        let e = p(s).unwrap();
        let n = e.child("urn:x", "n").unwrap();
        assert!(e.has_comment());
        assert_eq!(n.text(), "abcd");
        assert_eq!(p(&e.to_xml()).unwrap(), e);
    }

    /// Found by the `xml_parse` fuzz target: an element without a name was accepted and
    /// re-serialised as `</>`, which the parser then refused.
    #[test]
    fn fuzz_element_without_a_name_is_refused() {
        for input in ["< />", "<>", "< ></ >", "<a:/>", "<:a/>"] {
            assert!(
                matches!(p(input), Err(XmlError::Malformed(_))),
                "{input:?} accepted"
            );
        }
    }
}
