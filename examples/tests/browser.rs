//! The guide's story in a real browser (Debian's headless Chromium over WebDriver): a person
//! signs in to the web application, asks the agent, reads on the page what the finance API
//! saw, signs out; then the hostile cases, each refused on the page with nothing done.
//! Against the development provider and a real Keycloak. Screenshots go to
//! `target/browser/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dual_auth::keycloak::{KeycloakAdapter, KeycloakConfig};
use dual_auth::prelude::*;
use dual_auth_examples::web::{AgentSettings, DEV_AGENT, DevWebDemo, LoginProvider, WebDemo, WebDemoConfig};
use dual_auth_test_support::browser::{Browser, ChromeDriver};
use dual_auth_test_support::keycloak::{ALICE, API_AUDIENCE, BOB, Keycloak, SECRET_AGENT, WEB_CLIENT};
use serde_json::Value;

const SIGN_IN_WAIT: Duration = Duration::from_secs(90);

/// Who signs in, and what the API must then see.
struct Person {
    username: String,
    password: String,
    id: String,
    name: String,
}

/// The provider the demo runs against, as the assertions need it.
struct Site<'a> {
    demo: &'a WebDemo,
    agent: &'a str,
    label: &'a str,
    alice: Person,
    bob: Person,
    /// The provider's token endpoint, the web client's secret and the provider's CA: for
    /// an attacker's own redemption attempt.
    token_url: String,
    web_client: (String, String),
    ca_pem: String,
}

fn screenshot_path(name: &str) -> PathBuf {
    dual_auth_test_support::workspace_root().join("target/browser").join(format!("{name}.png"))
}

/// Signs `person` in from the home page; returns the callback URL the provider sent the
/// browser to (kept to replay it).
async fn sign_in(browser: &Browser, site: &Site<'_>, person: &Person) -> String {
    browser.goto(&format!("{}/", site.demo.url())).await;
    browser.click("#login").await;
    browser.find("#kc-form-login").await;
    browser.fill("#username", &person.username).await;
    browser.fill("#password", &person.password).await;
    browser.click("#kc-login").await;
    browser.wait_for_text(&format!("Signed in as {}", person.name), SIGN_IN_WAIT).await;
    let callback = browser.current_url().await;
    assert!(callback.starts_with(&format!("{}/callback?", site.demo.url())), "{callback}");
    browser.click("#continue").await;
    let whoami = browser.text("#whoami").await;
    assert!(whoami.contains(&person.name) && whoami.contains(&person.id), "{whoami}");
    callback
}

/// Picks `mode` and asks the agent; waits for the result page.
async fn ask_the_agent(browser: &Browser, mode: &str) {
    browser.click(&format!("input[name='mode'][value='{mode}']")).await;
    browser.click("#run-task").await;
    browser.find("#evidence-mode").await;
}

async fn assert_api_saw(browser: &Browser, site: &Site<'_>, person: &Person, vouched_by: &str) {
    if let Some(error) = browser.try_find("#error").await {
        panic!("the task failed on {}: {}", site.label, error.text().await);
    }
    assert_eq!(browser.text("#seen-agent").await, site.agent);
    assert_eq!(browser.text("#seen-human").await, person.id);
    assert_eq!(browser.text("#vouched-by").await, vouched_by);
    assert!(browser.text("#human-match").await.starts_with('✓'));
    // The two identities side by side, and the chain as a picture.
    assert!(browser.text("#agent-card").await.contains(site.agent));
    assert!(browser.text("#human-card").await.contains(&person.name));
    let chain = browser.find("#chain").await;
    assert_eq!(chain.attribute("aria-label").await.as_deref(), Some("The delegation chain"));
}

/// The story: sign in, each offered mode, sign out; the session is gone afterwards.
async fn story(driver: &ChromeDriver, site: &Site<'_>, guide: bool) -> String {
    let browser = driver.browser(1280, 1000).await;
    let calls = site.demo.api_log().calls();
    let callback = sign_in(&browser, site, &site.alice).await;

    ask_the_agent(&browser, "token-exchange").await;
    assert_api_saw(&browser, site, &site.alice, "identity-provider").await;
    assert!(browser.text("#evidence-mode").await.contains("in-session token exchange (RFC 8693)"));
    let size = browser.screenshot(&screenshot_path(&format!("{}-token-exchange", site.label))).await;
    assert!(size > 20_000, "a screenshot of a whole page, not a blank one: {size} bytes");
    let seen: Value = site.demo.api_log().last().expect("the API answered");
    assert_eq!(seen["human"]["sub"], site.alice.id.as_str());
    assert_eq!(seen["agent"]["client_id"], site.agent);
    assert_eq!(seen["vouched_by"], "identity-provider");

    browser.click("#home").await;
    ask_the_agent(&browser, "out-of-session").await;
    assert_api_saw(&browser, site, &site.alice, "identity-provider").await;
    assert!(browser.text("#evidence-mode").await.contains("out-of-session"));

    browser.click("#home").await;
    if guide {
        ask_the_agent(&browser, "self-asserted").await;
        assert_api_saw(&browser, site, &site.alice, "agent").await;
        assert!(browser.text("#evidence-mode").await.contains("self-asserted"));
        browser.screenshot(&screenshot_path(&format!("{}-self-asserted", site.label))).await;
        browser.click("#home").await;
    } else {
        let option = browser.find("input[value='self-asserted']").await;
        assert_eq!(option.attribute("disabled").await.as_deref(), Some("true"), "the guide's mode is offered only where it works");
    }
    let served = if guide { 3 } else { 2 };
    assert_eq!(site.demo.api_log().calls(), calls + served);

    let session = browser.cookie(dual_auth_examples::web::SESSION_COOKIE).await.expect("a session cookie");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["secure"], true);
    assert_eq!(session["sameSite"], "Lax");
    browser.click("#logout").await;
    browser.find("#signed-out").await;
    assert!(browser.cookie(dual_auth_examples::web::SESSION_COOKIE).await.is_none(), "the cookie is cleared");
    // The old cookie, put back, names no session any more.
    browser.add_cookie(&session).await;
    browser.goto(&format!("{}/", site.demo.url())).await;
    browser.find("#login").await;
    assert!(browser.try_find("#task").await.is_none());
    browser.quit().await;
    callback
}

/// The hostile cases, each refused on the page with a clear message; the API serves none.
async fn hostile(driver: &ChromeDriver, site: &Site<'_>, alice_callback: &str) {
    let app = site.demo.url();
    let calls = site.demo.api_log().calls();
    let browser = driver.browser(1280, 900).await;

    // A forged state.
    browser.goto(&format!("{app}/callback?code=forged-code&state=forged-state")).await;
    assert!(browser.text("#error").await.contains("unknown state"), "{}", browser.body_text().await);
    assert_eq!(browser.text("#nothing-done").await, "Nothing was done.");

    // Alice's callback replayed in another browser: its state belongs to her browser.
    browser.goto(alice_callback).await;
    assert!(browser.text("#error").await.contains("started in another browser"), "{}", browser.body_text().await);

    // Her code injected into a sign-in this browser started: the provider refuses it (used,
    // and bound to her PKCE challenge).
    browser.goto(&format!("{app}/")).await;
    browser.click("#login").await;
    browser.find("#kc-form-login").await;
    let authorize = url::Url::parse(&browser.current_url().await).unwrap();
    let param = |url: &url::Url, name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap();
    let state = param(&authorize, "state");
    let alice_code = param(&url::Url::parse(alice_callback).unwrap(), "code");
    let injected = format!("{app}/callback?code={alice_code}&state={state}");
    browser.goto(&injected).await;
    let error = browser.text("#error").await;
    assert!(error.contains("refused to redeem the code") && error.contains("invalid_grant"), "{error}");
    eprintln!("{}: Alice's code injected: {error}", site.label);
    // And this browser's own callback, once refused, is used up.
    browser.goto(&injected).await;
    assert!(browser.text("#error").await.contains("already used"), "{}", browser.body_text().await);

    // An authorization request stripped of its PKCE challenge: the provider refuses it.
    browser.goto(&format!("{app}/")).await;
    browser.click("#login").await;
    browser.find("#kc-form-login").await;
    let mut stripped = url::Url::parse(&browser.current_url().await).unwrap();
    let kept: Vec<(String, String)> =
        stripped.query_pairs().filter(|(k, _)| !k.starts_with("code_challenge")).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    stripped.query_pairs_mut().clear().extend_pairs(kept);
    browser.goto(stripped.as_str()).await;
    let error = browser.text("#error").await;
    assert!(error.contains("refused the sign-in") && error.contains("invalid_request") && error.contains("code_challenge"), "{error}");
    eprintln!("{}: an authorization request without PKCE: {error}", site.label);

    // A code stolen on its way (Bob signs in through a request whose state the application
    // never issued): the application refuses it, and the provider will not redeem it
    // without the PKCE verifier.
    browser.goto(&format!("{app}/")).await;
    browser.click("#login").await;
    browser.find("#kc-form-login").await;
    let mut forged = url::Url::parse(&browser.current_url().await).unwrap();
    let kept: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            let value = if k == "state" { "attacker-state".to_owned() } else { v.into_owned() };
            (k.into_owned(), value)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(kept);
    browser.goto(forged.as_str()).await;
    browser.fill("#username", &site.bob.username).await;
    browser.fill("#password", &site.bob.password).await;
    browser.click("#kc-login").await;
    assert!(browser.text("#error").await.contains("unknown state"), "{}", browser.body_text().await);
    let stolen = param(&url::Url::parse(&browser.current_url().await).unwrap(), "code");
    let http =
        reqwest::Client::builder().tls_certs_merge([reqwest::Certificate::from_pem(site.ca_pem.as_bytes()).unwrap()]).build().unwrap();
    let (client_id, secret) = &site.web_client;
    let answer = http
        .post(&site.token_url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", stolen.as_str()),
            ("redirect_uri", site.demo.redirect_uri().as_str()),
            ("client_id", client_id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let body: Value = answer.json().await.unwrap();
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    eprintln!("{}: a code redeemed without the PKCE verifier: {status} {body}", site.label);

    // An open redirect in the return address.
    for evil in ["https://evil.example/", "//evil.example/", "/\\evil.example"] {
        let url = url::Url::parse_with_params(&format!("{app}/login"), [("return_to", evil)]).unwrap();
        browser.goto(url.as_str()).await;
        assert!(browser.text("#error").await.contains("must be a path on this site"), "{evil}: {}", browser.body_text().await);
        assert!(browser.current_url().await.starts_with(app), "still on the application");
    }

    // A session cookie from another user: Bob's cookie under Alice's page.
    let alice = driver.browser(1280, 900).await;
    sign_in(&alice, site, &site.alice).await;
    let bob = driver.browser(1280, 900).await;
    sign_in(&bob, site, &site.bob).await;
    let bobs_cookie = bob.cookie(dual_auth_examples::web::SESSION_COOKIE).await.unwrap();
    alice.delete_cookie(dual_auth_examples::web::SESSION_COOKIE).await;
    alice.add_cookie(&bobs_cookie).await;
    alice.click("#run-task").await;
    let error = alice.text("#error").await;
    assert!(error.contains("issued to another session"), "{error}");
    alice.screenshot(&screenshot_path(&format!("{}-refused-cookie", site.label))).await;

    assert_eq!(site.demo.api_log().calls(), calls, "no hostile case reached the finance API");
    for b in [browser, alice, bob] {
        b.quit().await;
    }
}

#[tokio::test]
#[ignore = "drives Debian's Chromium: cargo xtask test"]
async fn in_a_real_browser_alice_signs_in_to_the_development_provider_and_the_api_sees_her_and_the_agent() {
    let running = DevWebDemo::start().await.unwrap();
    let person = |username: &str| {
        let user = running.idp.config().users.iter().find(|u| u.username == username).unwrap();
        Person { username: user.username.clone(), password: user.password.clone(), id: user.id.clone(), name: user.name.clone() }
    };
    let site = Site {
        demo: &running.demo,
        agent: DEV_AGENT,
        label: "devidp",
        alice: person("alice"),
        bob: person("bob"),
        token_url: running.idp.keycloak_token_url(),
        web_client: (running.idp.config().web_client_id.clone(), running.idp.web_client_secret().unwrap().to_owned()),
        ca_pem: running.idp.ca_pem().to_owned(),
    };
    let driver = ChromeDriver::start();
    let callback = story(&driver, &site, true).await;
    let issued = running.idp.token_requests().iter().filter(|r| r.status == 200).count();
    hostile(&driver, &site, &callback).await;
    // Two sign-ins (Alice, Bob) and nothing else issued during the hostile cases.
    let issued_since = running.idp.token_requests().iter().filter(|r| r.status == 200).count() - issued;
    assert_eq!(issued_since, 2, "{:?}", running.idp.token_requests());
}

#[tokio::test]
#[ignore = "starts a real Keycloak and drives Debian's Chromium: cargo xtask test"]
async fn in_a_real_browser_alice_signs_in_to_keycloak_and_the_api_sees_her_and_the_agent() {
    let kc = Keycloak::start().unwrap();
    let http = dual_auth_test_support::agent::keycloak_http_settings(&kc);
    let auth = dual_auth_test_support::agent::secret_auth(kc.agent_secret());
    let adapter =
        KeycloakAdapter::new(KeycloakConfig::new(kc.token_url(), SECRET_AGENT, auth), AdapterOptions::with_http(http.clone())).unwrap();
    let config = WebDemoConfig {
        login: LoginProvider {
            issuer: kc.issuer(),
            client_id: WEB_CLIENT.into(),
            client_secret: SecretString::from(kc.web_client_secret().to_owned()),
            display_name: "Keycloak".into(),
        },
        agent: AgentSettings {
            agent_id: SECRET_AGENT.into(),
            adapter: Arc::new(adapter),
            scopes: vec!["finance.read".into()],
            guide_unavailable: Some("a stock Keycloak does not copy the agent's act into its tokens".into()),
        },
        api_audience: API_AUDIENCE.into(),
        http,
    };
    let demo = WebDemo::start(config).await.unwrap();
    kc.set_web_redirect_uri(&demo.redirect_uri()).await;
    let person = |user: &dual_auth_test_support::keycloak::TestUser| Person {
        username: user.username.into(),
        password: kc.user_password().into(),
        id: user.id.into(),
        name: user.name.into(),
    };
    let site = Site {
        demo: &demo,
        agent: SECRET_AGENT,
        label: "keycloak",
        alice: person(&ALICE),
        bob: person(&BOB),
        token_url: kc.token_url(),
        web_client: (WEB_CLIENT.to_owned(), kc.web_client_secret().to_owned()),
        ca_pem: kc.ca.ca_pem().to_owned(),
    };
    let driver = ChromeDriver::start();
    let callback = story(&driver, &site, false).await;
    hostile(&driver, &site, &callback).await;
}
