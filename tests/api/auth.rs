//! Identity for scripts: login tokens, API tokens, expiry, revocation, throttling, users.

use rocket::http::Method;
use serde_json::json;

use crate::helpers::*;

#[rocket::async_test]
async fn login_me_and_logout() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/api/auth/login",
            None,
            json!({ "email": "ADMIN@example.com ", "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let token = r.json["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("obx_"));
    assert!(r.json["expires"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r.json["user"]["role"], "admin");
    assert!(r.json["user"].get("password_hash").is_none());
    let me = app.get("/api/auth/me", Some(&token)).await;
    assert_eq!(me.json["email"], ADMIN_EMAIL);
    assert_eq!(
        app.post("/api/auth/logout", Some(&token), json!({}))
            .await
            .status,
        204
    );
    assert_eq!(app.get("/api/auth/me", Some(&token)).await.status, 401);
    // The stored token is only a hash.
    let plain: i64 = app
        .sqlite()
        .query_row(
            "SELECT count(*) FROM _tokens WHERE hash = ?1",
            [token.as_bytes()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(plain, 0);
}

#[rocket::async_test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = TestApp::spawn().await;
    let a = app
        .post(
            "/api/auth/login",
            None,
            json!({ "email": ADMIN_EMAIL, "password": "wrong-password" }),
        )
        .await;
    let b = app
        .post(
            "/api/auth/login",
            None,
            json!({ "email": "ghost@example.com", "password": "wrong-password" }),
        )
        .await;
    assert_eq!(a.status, 401);
    assert_eq!(b.status, 401);
    assert_eq!(a.json["detail"], b.json["detail"]);
    let audit: i64 = app
        .sqlite()
        .query_row(
            "SELECT count(*) FROM _audit WHERE action = 'auth.login_failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audit, 2);
}

#[rocket::async_test]
async fn login_is_throttled_per_account_and_address_with_retry_after() {
    let app = TestApp::spawn().await;
    let mut last = None;
    for _ in 0..8 {
        let r = app
            .post(
                "/api/auth/login",
                None,
                json!({ "email": ADMIN_EMAIL, "password": "wrong-password" }),
            )
            .await;
        last = Some(r);
    }
    let r = last.unwrap();
    assert_eq!(r.status, 429, "{:?}", r.json);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 0);
    // Even the right password is refused while blocked from this address...
    let right = app
        .post(
            "/api/auth/login",
            None,
            json!({ "email": ADMIN_EMAIL, "password": PASSWORD }),
        )
        .await;
    assert_eq!(right.status, 429);
    // ...but the real user on another address is not locked out.
    let elsewhere = app
        .client
        .post("/api/auth/login")
        .remote("192.0.2.7:5000".parse().unwrap())
        .header(rocket::http::ContentType::JSON)
        .body(json!({ "email": ADMIN_EMAIL, "password": PASSWORD }).to_string())
        .dispatch()
        .await;
    assert_eq!(elsewhere.status().code, 200);
    // The counter was persisted.
    let n: i64 = app
        .sqlite()
        .query_row("SELECT count(*) FROM _login_attempts", [], |r| r.get(0))
        .unwrap();
    assert!(n >= 1);
}

#[rocket::async_test]
async fn api_tokens_are_shown_once_listed_and_revocable() {
    let app = TestApp::spawn().await;
    let (_, user) = app.user("u@example.com").await;
    let created = app
        .post(
            "/api/tokens",
            Some(&user),
            json!({ "name": "ci", "expires": "30d" }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.json);
    let secret = created.json["token"].as_str().unwrap().to_string();
    let id = created.json["id"].as_str().unwrap().to_string();
    assert!(created.json["expires"].is_string());
    let list = app.get("/api/tokens", Some(&secret)).await;
    assert_eq!(list.status, 200);
    let items = list.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert!(items[0].get("token").is_none() && items[0].get("hash").is_none());
    // Another user cannot revoke it.
    let (_, other) = app.user("o@example.com").await;
    assert_eq!(
        app.delete(&format!("/api/tokens/{id}"), Some(&other))
            .await
            .status,
        404
    );
    assert_eq!(
        app.delete(&format!("/api/tokens/{id}"), Some(&user))
            .await
            .status,
        204
    );
    assert_eq!(app.get("/api/auth/me", Some(&secret)).await.status, 401);
    let bad = app
        .post(
            "/api/tokens",
            Some(&user),
            json!({ "name": "x", "expires": "soon" }),
        )
        .await;
    assert_eq!(bad.status, 422);
}

#[rocket::async_test]
async fn expired_tokens_are_refused() {
    // The expiry is changed behind the server's back, so its token cache is off here.
    let app = TestApp::spawn_with(|s| s.token_cache_ttl = std::time::Duration::ZERO).await;
    let created = app
        .post("/api/tokens", Some(&app.admin), json!({ "name": "short" }))
        .await;
    let secret = created.json["token"].as_str().unwrap().to_string();
    let id = created.json["id"].as_str().unwrap().to_string();
    assert_eq!(app.get("/api/auth/me", Some(&secret)).await.status, 200);
    // Expire it in the database (the server reads expiry on every request).
    {
        let db = rusqlite::Connection::open(app.dir.path().join("onebox.db")).unwrap();
        db.execute(
            "UPDATE _tokens SET expires = '2000-01-01T00:00:00.000Z' WHERE id = ?1",
            [&id],
        )
        .unwrap();
    }
    let r = app.get("/api/auth/me", Some(&secret)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
}

#[rocket::async_test]
async fn users_admin_and_password_policy() {
    let app = TestApp::spawn().await;
    let weak = app
        .post(
            "/api/users",
            Some(&app.admin),
            json!({ "email": "w@example.com", "password": "password" }),
        )
        .await;
    assert_eq!(weak.status, 422);
    assert!(weak.json["errors"]["password"].is_string());
    let short = app
        .post(
            "/api/users",
            Some(&app.admin),
            json!({ "email": "w@example.com", "password": "abc" }),
        )
        .await;
    assert_eq!(short.status, 422);
    let (uid, utoken) = app.user("u@example.com").await;
    let dup = app
        .post(
            "/api/users",
            Some(&app.admin),
            json!({ "email": "U@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(app.get("/api/users", Some(&utoken)).await.status, 403);
    let list = app.get("/api/users", Some(&app.admin)).await;
    assert_eq!(list.json["items"].as_array().unwrap().len(), 2);
    // Role change ends the user's login sessions.
    let promote = app
        .patch(
            &format!("/api/users/{uid}"),
            Some(&app.admin),
            json!({ "role": "admin" }),
        )
        .await;
    assert_eq!(promote.status, 200, "{:?}", promote.json);
    assert_eq!(app.get("/api/auth/me", Some(&utoken)).await.status, 401);
    // Disabling ends sign-in.
    app.patch(
        &format!("/api/users/{uid}"),
        Some(&app.admin),
        json!({ "disabled": true }),
    )
    .await;
    let login = app
        .post(
            "/api/auth/login",
            None,
            json!({ "email": "u@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(login.status, 401);
    // Mass assignment: unknown fields are refused.
    let mass = app
        .patch(
            &format!("/api/users/{uid}"),
            Some(&app.admin),
            json!({ "id": "x" }),
        )
        .await;
    assert_eq!(mass.status, 422);
}

#[rocket::async_test]
async fn the_last_admin_cannot_be_demoted_or_deleted() {
    let app = TestApp::spawn().await;
    let me = app.get("/api/auth/me", Some(&app.admin)).await;
    let id = me.json["id"].as_str().unwrap();
    let demote = app
        .patch(
            &format!("/api/users/{id}"),
            Some(&app.admin),
            json!({ "role": "user" }),
        )
        .await;
    assert_eq!(demote.status, 409);
    let del = app
        .call(
            Method::Delete,
            &format!("/api/users/{id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(del.status, 409);
    assert_eq!(
        app.get("/api/auth/me", Some(&app.admin)).await.json["role"],
        "admin"
    );
}
