//! Calling our servers' routers in process, for the abuse tests.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

/// Path and query of `url` (for a router mounted at its root).
pub fn path_and_query(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

/// One GET of `uri` through `router` (in process, sharing the server's state).
pub async fn oneshot(router: &axum::Router, uri: &str) -> axum::response::Response {
    router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap()
}

/// The `X-SPID-Rule` of a response.
pub fn rule_of(r: &axum::response::Response) -> Option<String> {
    r.headers()
        .get(spid_sp::RULE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
