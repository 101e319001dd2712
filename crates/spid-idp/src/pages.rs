//! The IdP's login, OTP and consent pages. Form ids and field names are stable: the harness's
//! built-in login driver relies on them.

use maud::{html, Markup, DOCTYPE};

fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="it" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { "body{font-family:sans-serif;max-width:32rem;margin:2rem auto}label{display:block;margin:.5rem 0}.err{color:#a00}.hint{background:#ffd;padding:.5rem}" }
            }
            body { h1 { "spid-harness test IdP" } h2 { (title) } (body) }
        }
    }
    .into_string()
}

/// Username and password (with the requesting SP and level shown).
pub fn login(txn: &str, sp: &str, level: &str, error: Option<&str>) -> String {
    page(
        "Accedi con SPID",
        html! {
            p { "Service: " code { (sp) } " — requested level: " strong { (level) } }
            @if let Some(e) = error { p class="err" id="error" { (e) } }
            form id="login-form" method="post" action="login" {
                input type="hidden" name="txn" value=(txn);
                label { "Username " input type="text" name="username" autocomplete="username"; }
                label { "Password " input type="password" name="password" autocomplete="current-password"; }
                button type="submit" name="action" value="login" { "Entra" }
                " "
                button type="submit" name="action" value="cancel" { "Annulla" }
            }
            p class="hint" { "Test users are listed in fixtures/users.toml (password: password123)." }
        },
    )
}

/// The OTP step for L≥2 (the test OTP is shown on purpose).
pub fn otp(txn: &str, hint: &str, error: Option<&str>) -> String {
    page(
        "Secondo fattore (OTP)",
        html! {
            @if let Some(e) = error { p class="err" id="error" { (e) } }
            form id="otp-form" method="post" action="otp" {
                input type="hidden" name="txn" value=(txn);
                label { "OTP " input type="text" name="otp" inputmode="numeric" autocomplete="one-time-code"; }
                button type="submit" name="action" value="verify" { "Verifica" }
                " "
                button type="submit" name="action" value="cancel" { "Annulla" }
            }
            p class="hint" id="otp-hint" { "Test IdP: this user's OTP is " code { (hint) } }
        },
    )
}

/// Consent to release the listed attributes to the SP.
pub fn consent(txn: &str, sp: &str, level: &str, attributes: &[(String, String)]) -> String {
    page(
        "Consenso",
        html! {
            p { "Authenticated at " strong { (level) } ". " code { (sp) } " asks for:" }
            ul { @for (n, v) in attributes { li { (n) ": " (v) } } }
            form id="consent-form" method="post" action="consent" {
                input type="hidden" name="txn" value=(txn);
                button type="submit" name="action" value="accept" { "Acconsento" }
                " "
                button type="submit" name="action" value="deny" { "Nego il consenso" }
            }
        },
    )
}

/// An error shown to the user (nr2–7, nr10, unknown SP, bad requests).
pub fn error(title: &str, code: Option<u8>, detail: &str) -> String {
    page(
        title,
        html! {
            @if let Some(c) = code { p id="spid-error" data-code=(c) { "ErrorCode nr" (c) } }
            p { (detail) }
        },
    )
}
