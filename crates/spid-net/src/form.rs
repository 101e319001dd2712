//! The bounded `application/x-www-form-urlencoded` parser.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

/// How much of a form body a handler accepts. The body's own size is bounded by each
/// router's `DefaultBodyLimit`; these bound what parsing it costs (a 1 MiB body of `=&`
/// pairs would otherwise become half a million allocated strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormLimits {
    /// Fields (name=value pairs, empty ones included).
    pub max_fields: usize,
    /// Decoded bytes of all names and values together (percent-decoding shrinks, but an
    /// invalid UTF-8 byte grows into a 3-byte replacement character).
    pub max_decoded_bytes: usize,
}

impl Default for FormLimits {
    /// 64 fields (every SPID/OIDC form here has fewer than 20) and 768 KiB decoded (room for
    /// a SAMLResponse past the 256 KiB message limit, so the SAML layer still names *that*).
    fn default() -> Self {
        FormLimits {
            max_fields: 64,
            max_decoded_bytes: 768 * 1024,
        }
    }
}

/// Why a form was refused. Never truncated silently: the whole form is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormRefusal {
    /// More than `limit` fields.
    TooManyFields {
        /// The bound.
        limit: usize,
    },
    /// More than `limit` decoded bytes.
    TooLarge {
        /// The bound.
        limit: usize,
    },
}

impl FormRefusal {
    /// A stable reason, also sent in the `X-Form-Refusal` header of the 400.
    pub fn reason(&self) -> &'static str {
        match self {
            FormRefusal::TooManyFields { .. } => "form-too-many-fields",
            FormRefusal::TooLarge { .. } => "form-too-large",
        }
    }
}

impl std::fmt::Display for FormRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormRefusal::TooManyFields { limit } => {
                write!(
                    f,
                    "{}: the form has more than {limit} fields",
                    self.reason()
                )
            }
            FormRefusal::TooLarge { limit } => write!(
                f,
                "{}: the form's names and values exceed {limit} bytes",
                self.reason()
            ),
        }
    }
}

impl std::error::Error for FormRefusal {}

impl IntoResponse for FormRefusal {
    /// 400 with a small page and the reason in `X-Form-Refusal`.
    fn into_response(self) -> Response {
        let page = format!(
            "<!DOCTYPE html><html><head><title>Form refused</title></head>\
             <body><h1>Form refused</h1><p>{self}</p></body></html>"
        );
        (
            StatusCode::BAD_REQUEST,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (
                    header::HeaderName::from_static("x-form-refusal"),
                    HeaderValue::from_static(self.reason()),
                ),
            ],
            page,
        )
            .into_response()
    }
}

/// Parses `body` (or a query string) as a form, in order, within `limits`. Counting happens
/// before anything is copied, so a refused form costs no allocation per field.
pub fn form(body: &[u8], limits: &FormLimits) -> Result<Vec<(String, String)>, FormRefusal> {
    let mut fields = Vec::new();
    let mut bytes = 0usize;
    for (k, v) in url::form_urlencoded::parse(body) {
        if fields.len() == limits.max_fields {
            return Err(FormRefusal::TooManyFields {
                limit: limits.max_fields,
            });
        }
        bytes = bytes.saturating_add(k.len() + v.len());
        if bytes > limits.max_decoded_bytes {
            return Err(FormRefusal::TooLarge {
                limit: limits.max_decoded_bytes,
            });
        }
        fields.push((k.into_owned(), v.into_owned()));
    }
    Ok(fields)
}

/// The fields as a map where the first value of a repeated name wins (a repeated parameter
/// must not override an earlier one silently).
pub fn first_wins(fields: Vec<(String, String)>) -> HashMap<String, String> {
    let mut m = HashMap::with_capacity(fields.len());
    for (k, v) in fields {
        m.entry(k).or_insert(v);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    #[test]
    fn honest_forms_parse_in_order() {
        let f = form(
            b"SAMLResponse=PD94%2B&RelayState=a+b&x=",
            &FormLimits::default(),
        );
        assert_eq!(
            f.unwrap(),
            vec![
                ("SAMLResponse".to_string(), "PD94+".to_string()),
                ("RelayState".to_string(), "a b".to_string()),
                ("x".to_string(), String::new()),
            ]
        );
        assert_eq!(form(b"", &FormLimits::default()).unwrap(), vec![]);
        let m = first_wins(form(b"a=1&a=2&b=3", &FormLimits::default()).unwrap());
        assert_eq!(m.get("a").map(String::as_str), Some("1"));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn exactly_the_field_limit_passes_one_more_is_refused() {
        let limits = FormLimits::default();
        let at = vec!["k=v"; limits.max_fields].join("&");
        assert_eq!(form(at.as_bytes(), &limits).unwrap().len(), 64);
        let over = vec!["k=v"; limits.max_fields + 1].join("&");
        let e = form(over.as_bytes(), &limits).unwrap_err();
        assert_eq!(e, FormRefusal::TooManyFields { limit: 64 });
        assert_eq!(e.reason(), "form-too-many-fields");
    }

    #[test]
    fn half_a_million_empty_fields_are_refused() {
        let body = "=&".repeat(520 * 1024);
        assert_eq!(
            form(body.as_bytes(), &FormLimits::default()),
            Err(FormRefusal::TooManyFields { limit: 64 })
        );
    }

    #[test]
    fn decoded_bytes_are_bounded_including_replacement_growth() {
        let limits = FormLimits {
            max_fields: 64,
            max_decoded_bytes: 10,
        };
        assert!(form(b"abcde=12345", &limits).is_ok());
        assert_eq!(
            form(b"abcde=123456", &limits),
            Err(FormRefusal::TooLarge { limit: 10 })
        );
        // Four invalid bytes decode to four 3-byte U+FFFD: 12 > 10.
        assert_eq!(
            form(b"a=%FF%FF%FF%FF", &limits).unwrap_err().reason(),
            "form-too-large"
        );
        let big = format!("SAMLResponse={}", "A".repeat(400 * 1024));
        assert!(form(big.as_bytes(), &FormLimits::default()).is_ok());
    }

    #[tokio::test]
    async fn refusal_is_a_400_naming_its_reason() {
        let r = FormRefusal::TooManyFields { limit: 64 }.into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()["x-form-refusal"], "form-too-many-fields");
        let body = to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("more than 64 fields"), "{body}");
    }
}
