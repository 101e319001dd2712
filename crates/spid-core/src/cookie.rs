//! Reading a session id from `Cookie` request headers: the IdP, the SP and the RP each keep
//! one in a cookie of their own name.

/// The longest session id accepted: ours are 32 characters; anything longer is not ours.
pub const MAX_SESSION_ID_LEN: usize = 64;

/// The value of cookie `name` among `Cookie` header values, when present, non-empty and at
/// most [`MAX_SESSION_ID_LEN`] long (the first one wins when a name repeats).
pub fn session_cookie<'a>(
    cookie_headers: impl IntoIterator<Item = &'a str>,
    name: &str,
) -> Option<String> {
    cookie_headers
        .into_iter()
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= MAX_SESSION_ID_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_named_cookie_and_refuses_odd_values() {
        let h = ["a=1; sid=abc", "sid=second"];
        assert_eq!(session_cookie(h, "sid").as_deref(), Some("abc"));
        assert_eq!(session_cookie(h, "a").as_deref(), Some("1"));
        assert_eq!(session_cookie(h, "nope"), None);
        assert_eq!(session_cookie(["sid="], "sid"), None);
        let long = format!("sid={}", "x".repeat(MAX_SESSION_ID_LEN + 1));
        assert_eq!(session_cookie([long.as_str()], "sid"), None);
        // A cookie whose name merely ends with the wanted one is another cookie.
        assert_eq!(session_cookie(["xsid=1"], "sid"), None);
    }
}
