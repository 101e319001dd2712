//! The RP's pages (maud escapes every value).

use super::callback::{Identity, Refusal};
use super::session::SessionCheck;
use maud::{html, Markup, DOCTYPE};

fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="it" {
            head { meta charset="utf-8"; title { (title) } }
            body { h1 { (title) } (body) }
        }
    }
    .into_string()
}

/// After an accepted login: the level, the pairwise subject and the userinfo claims.
pub fn accepted(id: &Identity) -> String {
    page(
        "Accesso effettuato (OpenID Connect)",
        html! {
            p id="outcome" data-outcome="accepted" { "Login accepted at " strong id="level" { (id.acr.uri()) } "." }
            table {
                tr { th { "OP" } td id="op" { (id.op) } }
                tr { th { "sub" } td id="sub" { (id.sub) } }
                @for (n, v) in &id.claims {
                    tr { th { (n) } td data-claim=(n) { (v) } }
                }
            }
        },
    )
}

/// After an accepted refresh or introspection: the OP, the subject and the level.
pub fn session_checked(title: &str, c: &SessionCheck) -> String {
    page(
        title,
        html! {
            p id="outcome" data-outcome="accepted" {
                "Accepted"
                @if let Some(level) = c.acr { " at " strong id="level" { (level.uri()) } }
                "."
            }
            table {
                tr { th { "OP" } td id="op" { (c.op) } }
                tr { th { "sub" } td id="sub" { (c.sub) } }
            }
        },
    )
}

/// A refusal, with its rule code.
pub fn rejected(r: &Refusal) -> String {
    page(
        "Accesso negato",
        html! {
            p id="outcome" data-outcome="rejected" { "Rule: " code id="rule" { (r.rule.code()) } " — " (r.rule.summary()) }
            p { "Detail: " (r.detail) }
            p { "Reference: " (r.rule.reference()) }
        },
    )
}

/// A plain error page.
pub fn error(title: &str, detail: &str) -> String {
    page(title, html! { p { (detail) } })
}
