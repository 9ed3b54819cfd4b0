//! Two-factor sign-in: TOTP enrolment, the second sign-in step (a code accepted once, recovery
//! codes, throttling), turning it off, and the API login's second factor.

use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, PASSWORD, TestApp};
use crate::site_account::*;
use crate::site_client::SiteClient;

#[rocket::async_test]
async fn totp_enrolment_shows_the_qr_code_and_secret_and_turns_on_with_a_right_code() {
    let app = TestApp::spawn().await;
    let site = member(&app, ANN).await;
    let nosy = member(&app, "bob@example.com").await;
    assert_eq!(site.post("/account/totp/start", &[]).await.status, 303);
    let setup = site.get("/account/totp").await;
    let seed = column_of(&app, "totp_pending", ANN).unwrap();
    assert_eq!(seed.len(), 32);
    assert!(
        setup
            .body
            .contains("<img src=\"/account/totp/qr.svg\" alt=\"")
    );
    assert_eq!(text_of(&setup, "totp-secret"), seed);
    let qr = site.get("/account/totp/qr.svg").await;
    assert_eq!(qr.status, 200);
    assert_eq!(qr.header("content-type"), Some("image/svg+xml"));
    assert_eq!(qr.header("cache-control"), Some("no-store"));
    assert!(qr.body.contains("<svg") && qr.body.contains("<path"));
    // Only the user's own pending seed is drawn.
    assert_eq!(nosy.get("/account/totp/qr.svg").await.status, 404);
    // A wrong code keeps the enrolment pending and says so beside the field.
    let wrong = site
        .post("/account/totp/confirm", &[("code", "000000")])
        .await;
    let wrong = if code_now(&seed) == "000000" {
        site.post("/account/totp/confirm", &[("code", "111111")])
            .await
    } else {
        wrong
    };
    assert_eq!(wrong.status, 200);
    assert!(wrong.body.contains("id=\"code-error\""), "{}", wrong.body);
    assert_eq!(column_of(&app, "totp_secret", ANN), None);
    // A seed sent by the browser is ignored: only the server's pending seed counts.
    let done = site
        .post(
            "/account/totp/confirm",
            &[("code", &code_now(&seed)), ("seed", "JBSWY3DPEHPK3PXP")],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        column_of(&app, "totp_secret", ANN).as_deref(),
        Some(seed.as_str())
    );
    assert_eq!(column_of(&app, "totp_pending", ANN), None);
    let list = &done.body[done.body.find("id=\"recovery-codes\"").unwrap()..];
    assert_eq!(
        list[..list.find("</ul>").unwrap()].matches("<li>").count(),
        10
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM _recovery_codes WHERE used IS NULL"
        ),
        10
    );
    assert_eq!(audited(&app, "totp.enable"), 1);
    // The recovery codes were shown once: not in a flash cookie, not on the account page.
    assert!(done.set_cookies.iter().all(|c| !c.starts_with("_flash")));
    let account = site.get("/account").await;
    assert!(
        account
            .body
            .contains("Recovery codes left: <strong>10</strong>")
    );
    let first = &list[list.find("<li>").unwrap() + 4..];
    let first = first[..first.find("</li>").unwrap()].trim();
    assert_eq!(first.len(), 11, "{first}");
    assert!(!account.body.contains(first));
    // The QR code is gone with the pending seed.
    assert_eq!(site.get("/account/totp/qr.svg").await.status, 404);
}

#[rocket::async_test]
async fn signing_in_with_totp_needs_the_second_step_and_gives_a_new_session() {
    let app = TestApp::spawn().await;
    let site = member(&app, ANN).await;
    let (seed, _) = enrol(&app, &site, ANN).await;
    let b = password_step(&app, ANN).await;
    let pre = b.cookie("onebox_session").unwrap();
    // The half-finished session is nobody: not on the site, not on the API.
    assert!(!b.get("/").await.body.contains(ANN));
    assert_eq!(b.get("/account").await.status, 303);
    assert_eq!(b.get("/api/auth/me").await.status, 401);
    // The half-done session is short-lived: ten minutes to enter the code.
    let expires: String = app
        .sqlite()
        .query_row(
            "SELECT expires FROM _sessions WHERE mfa_pending = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let left = onebox::time::parse(&expires).unwrap() - chrono::Utc::now();
    assert!(
        left <= chrono::TimeDelta::minutes(10) && left > chrono::TimeDelta::minutes(9),
        "{left}"
    );
    let wrong = second_step(&b, "12345x").await;
    assert_eq!(wrong.status, 200);
    assert!(wrong.body.contains("id=\"code-error\""));
    let_time_pass(&app, ANN);
    let done = second_step(&b, &code_now(&seed)).await;
    assert_eq!((done.status, done.location()), (303, "/"), "{}", done.body);
    let post = b.cookie("onebox_session").unwrap();
    assert_ne!(pre, post);
    assert!(b.get("/").await.body.contains(ANN));
    assert_eq!(
        count(&app, "SELECT count(*) FROM _sessions WHERE mfa_pending = 1"),
        0
    );
    // The cookie from the password step is worth nothing now.
    let thief = SiteClient::new(&app);
    thief
        .cookies
        .borrow_mut()
        .insert("onebox_session".into(), pre);
    assert!(!thief.get("/").await.body.contains(ANN));
    let again = thief.get("/sign-in/totp").await;
    assert_eq!((again.status, again.location()), (303, "/sign-in?next=%2F"));
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM _audit WHERE action = 'auth.login' AND detail LIKE '%browser%'"
        ),
        2,
        "one sign-in before TOTP was on, one with it"
    );
}

#[rocket::async_test]
async fn a_totp_code_is_accepted_once_only() {
    let app = TestApp::spawn().await;
    let site = member(&app, ANN).await;
    let (seed, _) = enrol(&app, &site, ANN).await;
    // The code that turned TOTP on cannot also sign in.
    let b = password_step(&app, ANN).await;
    let code = code_now(&seed);
    let replay = second_step(&b, &code).await;
    if replay.status == 200 {
        assert!(replay.body.contains("id=\"code-error\""));
    } else {
        // The clock moved on to a new step between enrolment and now: a new code is fine
        // once, and the replay below is what is tested.
        assert_eq!(replay.status, 303);
    }
    let_time_pass(&app, ANN);
    let code = code_now(&seed);
    let c = password_step(&app, ANN).await;
    assert_eq!(second_step(&c, &code).await.status, 303);
    let d = password_step(&app, ANN).await;
    let refused = second_step(&d, &code).await;
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains("already used"));
    assert!(!d.get("/").await.body.contains(ANN));
}

#[rocket::async_test]
async fn a_recovery_code_completes_sign_in_once() {
    let app = TestApp::spawn().await;
    let site = member(&app, ANN).await;
    let (_, codes) = enrol(&app, &site, ANN).await;
    assert_eq!(codes.len(), 10);
    let b = password_step(&app, ANN).await;
    let done = second_step(&b, &codes[0].to_uppercase()).await;
    assert_eq!((done.status, done.location()), (303, "/"), "{}", done.body);
    assert!(b.get("/").await.body.contains(ANN));
    let c = password_step(&app, ANN).await;
    let again = second_step(&c, &codes[0]).await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains("id=\"code-error\""));
    let account = b.get("/account").await;
    assert!(
        account
            .body
            .contains("Recovery codes left: <strong>9</strong>")
    );
}

#[rocket::async_test]
async fn wrong_second_step_codes_are_throttled_and_counted_before_the_answer() {
    let app = TestApp::spawn().await;
    let site = member(&app, ANN).await;
    let (seed, _) = enrol(&app, &site, ANN).await;
    let b = password_step(&app, ANN).await;
    for _ in 0..5 {
        let page = second_step(&b, "999999x").await;
        assert!(page.body.contains("id=\"code-error\""));
    }
    assert_eq!(
        count(
            &app,
            "SELECT failures FROM _login_attempts WHERE key LIKE 'acct:totp:ann@%'"
        ),
        5
    );
    assert_eq!(audited(&app, "auth.totp_failed"), 5);
    let_time_pass(&app, ANN);
    let blocked = second_step(&b, &code_now(&seed)).await;
    assert_eq!(blocked.status, 200);
    assert!(
        blocked.body.contains("Too many attempts"),
        "{}",
        blocked.body
    );
    assert!(!b.get("/").await.body.contains(ANN));
}

#[rocket::async_test]
async fn turning_totp_off_needs_a_code() {
    let app = TestApp::spawn().await;
    let site = member(&app, ANN).await;
    let (seed, _) = enrol(&app, &site, ANN).await;
    site.get("/account").await;
    let refused = site
        .post_raw("/account/totp/disable", &[("code", &code_now(&seed))])
        .await;
    assert_eq!(refused.status, 403);
    let wrong = site.post("/account/totp/disable", &[("code", "abc")]).await;
    assert_eq!(wrong.status, 200);
    assert!(
        wrong.body.contains("id=\"totp-code-error\""),
        "{}",
        wrong.body
    );
    assert!(column_of(&app, "totp_secret", ANN).is_some());
    let_time_pass(&app, ANN);
    let done = site
        .post("/account/totp/disable", &[("code", &code_now(&seed))])
        .await;
    assert_eq!(
        (done.status, done.location()),
        (303, "/account"),
        "{}",
        done.body
    );
    assert!(
        site.get("/account")
            .await
            .body
            .contains("Two-factor sign-in is off.")
    );
    assert_eq!(column_of(&app, "totp_secret", ANN), None);
    assert_eq!(count(&app, "SELECT count(*) FROM _recovery_codes"), 0);
    assert_eq!(audited(&app, "totp.disable"), 1);
    let plain = SiteClient::new(&app);
    assert_eq!(plain.sign_in(ANN, PASSWORD).await.location(), "/");
}

#[rocket::async_test]
async fn the_api_login_of_a_user_with_totp_needs_the_code() {
    let app = TestApp::spawn().await;
    let site = member(&app, ANN).await;
    let (seed, codes) = enrol(&app, &site, ANN).await;
    let login = |code: Option<String>| {
        let mut body = json!({ "email": ANN, "password": PASSWORD });
        if let Some(c) = code {
            body["code"] = json!(c);
        }
        app.post("/api/auth/login", None, body)
    };
    let missing = login(None).await;
    assert_eq!(missing.status, 401);
    assert!(
        missing.json["detail"].as_str().unwrap().contains("`code`"),
        "{:?}",
        missing.json
    );
    assert!(missing.json.get("token").is_none());
    let wrong = login(Some("00000a".into())).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.json["detail"].as_str().unwrap().contains("wrong"));
    let_time_pass(&app, ANN);
    let ok = login(Some(code_now(&seed))).await;
    assert_eq!(ok.status, 200, "{:?}", ok.json);
    let token = ok.json["token"].as_str().unwrap();
    assert_eq!(app.get("/api/auth/me", Some(token)).await.status, 200);
    assert_eq!(login(Some(code_now(&seed))).await.status, 401, "replayed");
    assert_eq!(login(Some(codes[1].clone())).await.status, 200);
    assert_eq!(login(Some(codes[1].clone())).await.status, 401);
    // Users without TOTP are unaffected, and a code they send is ignored.
    let admin = app
        .post(
            "/api/auth/login",
            None,
            json!({ "email": ADMIN_EMAIL, "password": PASSWORD, "code": "123456" }),
        )
        .await;
    assert_eq!(admin.status, 200);
    // The OpenAPI document describes the field.
    let doc = app.get("/api/openapi.json", None).await;
    let schema = &doc.json["paths"]["/api/auth/login"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    assert_eq!(schema["properties"]["code"]["type"], "string", "{schema}");
}
