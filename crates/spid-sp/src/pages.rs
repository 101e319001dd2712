//! The SP's HTML pages (maud escapes every value).

use crate::validator::{Identity, Rejection};
use maud::{html, Markup, DOCTYPE};

fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="it" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { "body{font-family:sans-serif;max-width:48rem;margin:2rem auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}code{background:#f4f4f4}" }
            }
            body { h1 { (title) } (body) }
        }
    }
    .into_string()
}

/// The home page: who is logged in, and the login link(s).
pub fn home(identity: Option<&Identity>, idps: &[String]) -> String {
    page(
        "spid-harness reference SP",
        html! {
            @if let Some(id) = identity {
                p { "Logged in via " code { (id.idp) } " at " strong { (id.level.uri()) } "." }
                p { a href="logout" { "Logout" } }
            } @else {
                p { "Not logged in. This SP requires SPID level 2 or higher." }
            }
            ul {
                @for idp in idps {
                    li { a href={ "login?idp=" (urlencode(idp)) } { "Entra con SPID — " (idp) } }
                }
            }
        },
    )
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The page shown after an accepted login.
pub fn accepted(id: &Identity) -> String {
    page(
        "Accesso effettuato",
        html! {
            p id="outcome" data-outcome="accepted" { "Login accepted at " strong id="level" { (id.level.uri()) } "." }
            table {
                tr { th { "IdP" } td { (id.idp) } }
                tr { th { "NameID" } td id="name-id" { (id.name_id) } }
                tr { th { "Assertion" } td { (id.assertion_id) } }
                @for (n, v) in &id.attributes {
                    tr { th { (n) } td data-attribute=(n) { (v) } }
                }
            }
            @for w in &id.warnings { p class="warning" { "Warning: " (w) } }
            p { a href="./" { "Home" } }
        },
    )
}

/// The page shown with a refusal: the user message for SPID error codes, and the rule.
pub fn rejected(r: &Rejection) -> String {
    let title = if r.spid_error.is_some() {
        "Autenticazione non riuscita"
    } else {
        "Accesso negato"
    };
    page(
        title,
        html! {
            @if let (Some(e), Some(message)) = (r.spid_error, r.user_message()) {
                p id="spid-error" data-code=(e.0) { strong { (message) } }
                p { "Codice di errore " (r.profile.as_str().to_uppercase()) ": nr" (e.0) }
            } @else {
                p { "La risposta dell'identity provider non è valida e l'accesso è stato rifiutato." }
            }
            p id="outcome" data-outcome="rejected" { "Rule: " code id="rule" { (r.rule.code()) } " — " (r.rule.summary()) }
            p { "Detail: " (r.detail) }
            p { "Reference: " (r.rule.reference()) }
            p { a href="./" { "Home" } }
        },
    )
}

/// A plain error page (bad login parameters and the like).
pub fn error(title: &str, detail: &str) -> String {
    page(title, html! { p { (detail) } })
}
