//! Exclusive XML canonicalisation (exc-c14n 1.0, without comments, no InclusiveNamespaces) of
//! our own [`Element`] tree, for the signatures our IdP makes (see `dsig::sign_in_tree`).
//!
//! Written against the tree rather than run through libxml2 because the tree is already in
//! memory: the IdP then signs without serialising, parsing and re-serialising the document
//! twice per signature. It only handles documents that [`check`] accepts — the shapes whose
//! libxml2 reading is unambiguous — and the signer falls back to xmlsec for anything else;
//! the output is tested byte for byte against xmlsec's.

use super::xml::{escape_attr_into as escape_attr, escape_text_into as escape_text, Element, Node};
use std::collections::HashMap;

/// The namespace URI bound to the `xml` prefix (never declared).
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Namespace bindings in scope: (prefix, URI), innermost last; `""` is the default namespace.
pub(crate) type Scope<'a> = Vec<(&'a str, &'a str)>;

/// The URI `prefix` is bound to in `scope` (`""` for an unbound default namespace).
fn lookup<'a>(scope: &Scope<'a>, prefix: &str) -> Option<&'a str> {
    match scope.iter().rev().find(|(p, _)| *p == prefix) {
        Some((_, uri)) => Some(uri),
        None if prefix.is_empty() => Some(""),
        None if prefix == "xml" => Some(XML_NS),
        None => None,
    }
}

/// Pushes the namespace declarations `el` makes onto `scope`.
pub(crate) fn declare<'a>(el: &'a Element, scope: &mut Scope<'a>) {
    for (n, v) in &el.attrs {
        if n == "xmlns" {
            scope.push(("", v));
        } else if let Some(p) = n.strip_prefix("xmlns:") {
            scope.push((p, v));
        }
    }
}

fn is_decl(name: &str) -> bool {
    name == "xmlns" || name.starts_with("xmlns:")
}

/// What [`check`] learnt of a document it accepted.
#[derive(Debug, Default)]
pub(crate) struct Shape {
    /// How many elements carry each `ID` value.
    pub ids: HashMap<String, usize>,
    /// Child-index path of the first `ds:Signature` element in document order.
    pub first_signature: Option<Vec<usize>>,
}

/// Checks that `root` is a document whose canonical form this module computes exactly as
/// libxml2 and xmlsec would after reading its serialisation: every prefix declared and
/// consistent with the element's namespace, no `xml:` attribute, declarations before the
/// other attributes (libxml2 writes them first), no duplicate attribute, names of the plain
/// `prefix:local` shape, only characters XML 1.0 allows, well-formed comments. `None`
/// otherwise: the caller signs through xmlsec instead.
pub(crate) fn check(root: &Element) -> Option<Shape> {
    let mut shape = Shape::default();
    let mut scope: Scope<'_> = Vec::new();
    let mut path = Vec::new();
    walk(root, &mut scope, &mut path, &mut shape)?;
    Some(shape)
}

fn walk<'a>(
    el: &'a Element,
    scope: &mut Scope<'a>,
    path: &mut Vec<usize>,
    shape: &mut Shape,
) -> Option<()> {
    let mark = scope.len();
    let mut seen_plain = false;
    for (n, v) in &el.attrs {
        if is_decl(n) {
            if seen_plain {
                return None;
            }
            let p = n.strip_prefix("xmlns:").unwrap_or("");
            // Undeclaring (`xmlns:p=""`) or rebinding the reserved prefixes: xmlsec's business.
            if (n != "xmlns" && (v.is_empty() || !plain_name(p)))
                || p == "xml"
                || p == "xmlns"
                || v == XML_NS
            {
                return None;
            }
        } else {
            seen_plain = true;
        }
        if !xml_chars(v) {
            return None;
        }
    }
    declare(el, scope);
    if !qname_ok(&el.qname) || matches!(el.prefix(), Some("xml" | "xmlns")) {
        return None;
    }
    let uri = lookup(scope, el.prefix().unwrap_or(""))?;
    if el.ns.as_deref().unwrap_or("") != uri {
        return None;
    }
    let mut names: Vec<(&str, &str)> = Vec::with_capacity(el.attrs.len());
    for (n, v) in &el.attrs {
        if !qname_ok(n) {
            return None;
        }
        if is_decl(n) {
            names.push(("xmlns", n));
            continue;
        }
        let (ns, local) = match n.split_once(':') {
            // xmlsec finds IDs by local name: a prefixed one is its business.
            Some(("xml", _)) | Some((_, "ID")) => return None,
            Some((p, l)) => (lookup(scope, p)?, l),
            None => ("", n.as_str()),
        };
        names.push((ns, local));
        if n == "ID" {
            *shape.ids.entry(v.clone()).or_default() += 1;
        }
    }
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return None;
    }
    if shape.first_signature.is_none() && el.local() == "Signature" && uri == super::ns::DS {
        shape.first_signature = Some(path.clone());
    }
    for (i, c) in el.children.iter().enumerate() {
        match c {
            Node::Element(e) => {
                path.push(i);
                walk(e, scope, path, shape)?;
                path.pop();
            }
            Node::Text(t) => {
                if !xml_chars(t) {
                    return None;
                }
            }
            Node::Comment(t) => {
                if !xml_chars(t) || t.contains("--") || t.ends_with('-') {
                    return None;
                }
            }
        }
    }
    scope.truncate(mark);
    Some(())
}

/// `name` or `prefix:name`, each an ASCII NCName.
fn qname_ok(q: &str) -> bool {
    let mut parts = q.split(':');
    let ok = parts.next().is_some_and(plain_name);
    match (parts.next(), parts.next()) {
        (None, _) => ok,
        (Some(l), None) => ok && plain_name(l),
        _ => false,
    }
}

fn plain_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// Only characters XML 1.0 allows (tab, newline, carriage return, and from U+0020, less
/// U+FFFE and U+FFFF).
fn xml_chars(s: &str) -> bool {
    // Bytes: no C0 control but tab, newline and carriage return; U+FFFE and U+FFFF are the
    // only other characters XML 1.0 lacks, EF BF BE and EF BF BF in UTF-8.
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let b = s.as_bytes();
    let byte_ok = |i: usize, c: u8| {
        if c < 0x20 {
            matches!(c, b'\t' | b'\n' | b'\r')
        } else {
            c != 0xEF || b.get(i + 1) != Some(&0xBF) || !matches!(b.get(i + 2), Some(0xBE | 0xBF))
        }
    };
    let mut i = 0;
    // Eight bytes at a time past the words with neither a byte below 0x20 nor an 0xEF (the
    // usual text): such a word needs no look at its bytes.
    while let Some(chunk) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let x = u64::from_le_bytes(w);
        let below = x.wrapping_sub(LO * 0x20) & !x & HI;
        let y = x ^ (LO * 0xEF);
        let ef = y.wrapping_sub(LO) & !y & HI;
        if below | ef != 0 && !chunk.iter().enumerate().all(|(k, &c)| byte_ok(i + k, c)) {
            return false;
        }
        i += 8;
    }
    b[i..].iter().enumerate().all(|(k, &c)| byte_ok(i + k, c))
}

/// Appends the exclusive canonical form of `el` to `out`. `scope` holds the bindings in scope
/// at `el`'s parent; `skip` is the index (among `el.children`) of a child left out (the
/// enveloped signature). The document must have passed [`check`].
pub(crate) fn canonicalize(el: &Element, scope: &Scope<'_>, skip: Option<usize>, out: &mut String) {
    let mut scope = scope.clone();
    let mut rendered: Vec<(&str, &str)> = Vec::new();
    write_element(el, &mut scope, &mut rendered, skip, out);
}

fn write_element<'a>(
    el: &'a Element,
    scope: &mut Scope<'a>,
    rendered: &mut Vec<(&'a str, &'a str)>,
    skip: Option<usize>,
    out: &mut String,
) {
    let scope_mark = scope.len();
    let rendered_mark = rendered.len();
    declare(el, scope);
    // The prefixes this element visibly uses: its own (or the default namespace) and its
    // attributes'; each is declared unless an output ancestor already declared it so.
    let mut used: Vec<&str> = Vec::with_capacity(2);
    used.push(el.prefix().unwrap_or(""));
    for (n, _) in &el.attrs {
        if let Some((p, _)) = n.split_once(':') {
            if p != "xmlns" && !used.contains(&p) {
                used.push(p);
            }
        }
    }
    let mut decls: Vec<(&str, &str)> = Vec::with_capacity(used.len());
    for p in used {
        let uri = lookup(scope, p).unwrap_or("");
        let current = rendered
            .iter()
            .rev()
            .find(|(q, _)| *q == p)
            .map(|(_, u)| *u)
            .unwrap_or("");
        let fresh = !rendered.iter().any(|(q, _)| *q == p);
        if current != uri || (fresh && !p.is_empty()) {
            decls.push((p, uri));
        }
    }
    decls.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut attrs: Vec<(&str, &str, &str, &str)> = el
        .attrs
        .iter()
        .filter(|(n, _)| !is_decl(n))
        .map(|(n, v)| match n.split_once(':') {
            Some((p, l)) => (lookup(scope, p).unwrap_or(""), l, n.as_str(), v.as_str()),
            None => ("", n.as_str(), n.as_str(), v.as_str()),
        })
        .collect();
    attrs.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));

    out.push('<');
    out.push_str(&el.qname);
    for (p, uri) in &decls {
        if p.is_empty() {
            out.push_str(" xmlns=\"");
        } else {
            out.push_str(" xmlns:");
            out.push_str(p);
            out.push_str("=\"");
        }
        escape_attr(uri, out);
        out.push('"');
    }
    for (_, _, name, value) in &attrs {
        out.push(' ');
        out.push_str(name);
        out.push_str("=\"");
        escape_attr(value, out);
        out.push('"');
    }
    out.push('>');
    rendered.extend(decls);
    for (i, c) in el.children.iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        match c {
            Node::Element(e) => write_element(e, scope, rendered, None, out),
            Node::Text(t) => escape_text(t, out),
            Node::Comment(_) => {}
        }
    }
    out.push_str("</");
    out.push_str(&el.qname);
    out.push('>');
    rendered.truncate(rendered_mark);
    scope.truncate(scope_mark);
}

#[cfg(test)]
mod tests {
    use super::xml_chars;

    /// The byte-at-a-time reading of the rule, as a reference.
    fn reference(s: &str) -> bool {
        s.chars().all(|c| {
            !matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}')
                && c != '\u{fffe}'
                && c != '\u{ffff}'
        })
    }

    #[test]
    fn xml_chars_agrees_with_the_rule_at_every_position() {
        let specials = [
            '\u{0}', '\t', '\n', '\r', '\u{1f}', '\u{fffe}', '\u{ffff}', '\u{fffd}', 'ï', 'è', ' ',
        ];
        for len in 0..20 {
            for at in 0..len {
                for c in specials {
                    let s: String = (0..len)
                        .map(|k| {
                            if k == at {
                                c
                            } else {
                                (b'a' + (k % 26) as u8) as char
                            }
                        })
                        .collect();
                    assert_eq!(xml_chars(&s), reference(&s), "{s:?}");
                }
            }
        }
    }
}
