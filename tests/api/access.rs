//! Deny by default: every mounted route (API and site), called anonymously and as a plain user
//! against an admin-only collection, refuses — except the few routes that are public by
//! design. Site pages refuse anonymous visitors by sending them to the sign-in page.

use rocket::http::Method;
use serde_json::json;

use crate::helpers::*;

/// (method, path) pairs that may answer 2xx to anyone.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/openapi.json"),
    // The site's public pages: the home page (public collections only) and sign-in.
    ("GET", "/"),
    ("GET", "/sign-in"),
    // The second step of signing in: anyone without a pending session is sent to /sign-in.
    ("GET", "/sign-in/totp"),
];

/// Routes any signed-in user may use on their own account.
const SIGNED_IN: &[(&str, &str)] = &[
    ("GET", "/api/auth/me"),
    ("GET", "/api/tokens"),
    ("POST", "/api/tokens"),
    ("POST", "/api/auth/logout"),
    ("GET", "/account"),
    ("GET", "/account/totp"),
];

#[rocket::async_test]
async fn every_route_refuses_anonymous_and_plain_users_unless_public() {
    let app = TestApp::spawn().await;
    app.collection(json!({ "name": "secret", "fields": [ { "name": "v", "type": "text" } ] }))
        .await;
    let rec = app.record("secret", json!({ "v": "s" })).await;
    let rid = rec["id"].as_str().unwrap().to_string();
    let me = app.get("/api/auth/me", Some(&app.admin)).await;
    let admin_id = me.json["id"].as_str().unwrap().to_string();
    let routes: Vec<(Method, String)> = app
        .client
        .rocket()
        .routes()
        .map(|r| (r.method, r.uri.path().to_string()))
        .collect();
    assert!(routes.len() >= 20, "{routes:?}");
    for who in ["anonymous", "user"] {
        for (method, template) in &routes {
            // A fresh user each time: some routes (logout) end the caller's token.
            let token = if who == "user" {
                Some(
                    app.user(&format!("u{}@example.com", ulid::Ulid::generate()))
                        .await
                        .1,
                )
            } else {
                None
            };
            let path = template
                .replace("<name..>", "app.css")
                .replace("<token>", "not-the-setup-token")
                .replace("<name>", "secret")
                .replace("<field>", "v")
                .replace("<index>", "by_v")
                .replace(
                    "<id>",
                    if template.contains("users") {
                        &admin_id
                    } else {
                        &rid
                    },
                );
            let key = (method.as_str(), template.as_str());
            let allowed = PUBLIC.contains(&key) || (who == "user" && SIGNED_IN.contains(&key));
            let unsafe_method = matches!(method, Method::Post | Method::Patch | Method::Put);
            let r = if unsafe_method && !path.starts_with("/api") {
                // Site forms: an empty form, as a cross-site page would post it.
                app.call_form(*method, &path, token.as_deref(), "").await
            } else {
                let body = unsafe_method.then(|| json!({}));
                app.call(*method, &path, token.as_deref(), body).await
            };
            assert!(
                r.status < 500,
                "{who} {method} {path}: {} {:?}",
                r.status,
                r.json
            );
            if template == "/api/auth/login" {
                // Public by design; an empty body is simply invalid.
                assert_eq!(r.status, 422, "{:?}", r.json);
            } else if !allowed {
                // A page sends a visitor who is not signed in to the sign-in page.
                let to_sign_in = who == "anonymous"
                    && r.status == 303
                    && r.header("location")
                        .is_some_and(|l| l.starts_with("/sign-in"));
                assert!(
                    matches!(r.status, 401 | 403 | 404) || to_sign_in,
                    "{who} {method} {path} answered {} {:?}",
                    r.status,
                    r.json
                );
            }
        }
    }
    // Nothing was changed by any of it.
    let still = app
        .get(
            &format!("/api/collections/secret/records/{rid}"),
            Some(&app.admin),
        )
        .await;
    assert_eq!(still.json["v"], "s");
    assert_eq!(app.get("/api/auth/me", Some(&app.admin)).await.status, 200);
}
