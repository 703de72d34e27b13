//! A real Keycloak for the integration suite and for `cargo xtask keycloak`.
//!
//! `cargo xtask setup` installs the pinned distribution under `target/it/keycloak/dist`
//! (fetched from Maven Central with `mvn`, its SHA-256 checked, built once for this use: an
//! embedded H2 database, local caches, so no cluster ports) and writes a stamp naming the
//! version and the JDK to run it with. [`Keycloak::start`] runs it on 127.0.0.1 over HTTPS
//! only, with a throw-away CA, a home of its own under `target/it/keycloak/runs/` (its
//! database lives there) and the realm the project ships in
//! `examples/keycloak/dual-auth-realm.json`, whose secrets, agent key, application key and
//! passwords are made fresh for each start.
//!
//! For the delegation tests, and only at run time (the shipped realm has no client with the
//! password grant), test support adds confidential clients with `directAccessGrantsEnabled`
//! before Keycloak imports the realm: [`Keycloak::user_access_token`] logs a test user in
//! through one of them and returns the user's access token, the evidence an agent exchanges.
//!
//! Keycloak runs in production mode (`start --optimized`), not `start-dev`: the dev
//! profile always opens a plain-HTTP listener (`%dev.kc.http-enabled=true` wins over
//! `--http-enabled=false` in 26.7), and this suite wants none.
//!
//! The server stops when the [`Keycloak`] is dropped, and also when the process that
//! started it ends in any way (a panic, `exit`, a signal): a small shell watchdog holds the
//! server and stops it, and deletes its home, when its standard input closes.

use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::https::{TestCa, closed_port};
use crate::workspace_root;

/// The realm of `examples/keycloak/dual-auth-realm.json`.
pub const REALM: &str = "dual-auth";
/// The agent client that authenticates with `client_secret_jwt` (HS256).
pub const SECRET_AGENT: &str = "finance-agent";
/// The agent client that authenticates with `private_key_jwt` (RS256, a registered JWKS).
pub const KEY_AGENT: &str = "finance-agent-key";
/// The `kid` of [`KEY_AGENT`]'s registered key.
pub const KEY_AGENT_KID: &str = "agent-key-1";
/// The web application's client (authorization code with PKCE S256).
pub const WEB_CLIENT: &str = "finance-web";
/// The audience the realm adds to the agents' access tokens.
pub const API_AUDIENCE: &str = "https://api.dual-auth.example/finance";
/// The scopes the agents may ask for.
pub const SCOPES: [&str; 2] = ["finance.read", "finance.write"];
/// A third agent (`client_secret_jwt`, HS256, standard token exchange enabled) to which no
/// user's token is addressed: its exchanges of a user's token are refused.
pub const UNRELATED_AGENT: &str = "unrelated-agent";
/// The realm's identity provider of type `jwt-authorization-grant`: the application,
/// whose signed assertions about its users [`SECRET_AGENT`] may present.
pub const APP_IDP: &str = "finance-app";
/// That identity provider's `issuer`: the `iss` of the application's assertions.
pub const APP_ISSUER: &str = "https://finance-app.dual-auth.example";
/// The `kid` of the application's key (made for each run) registered on [`APP_IDP`].
pub const APP_KEY_ID: &str = "finance-app-key-1";
/// The id the application knows Alice by: the `userId` of her link to [`APP_IDP`], and so
/// the `sub` of the application's assertions about her.
pub const ALICE_APP_USER_ID: &str = "app-user-1001";
/// An id the application might use for Bob, who has no link to [`APP_IDP`].
pub const BOB_APP_USER_ID: &str = "app-user-1002";

/// Test-only client (added at run time, password grant): its access tokens name both
/// agents ([`SECRET_AGENT`], [`KEY_AGENT`]) in `aud`, like [`WEB_CLIENT`]'s, so that the
/// agents may exchange them.
pub const LOGIN_CLIENT: &str = "test-login";
/// Test-only client (added at run time, password grant) whose access tokens name no agent
/// in `aud`: evidence for another audience.
pub const LOGIN_CLIENT_OTHER_AUDIENCE: &str = "test-login-other-audience";
/// Test-only client (added at run time, password grant) as [`LOGIN_CLIENT`], whose access
/// tokens live [`SHORT_LIVED_SECONDS`]: evidence that expires while a test waits.
pub const LOGIN_CLIENT_SHORT_LIVED: &str = "test-login-short-lived";
/// The `access.token.lifespan` of [`LOGIN_CLIENT_SHORT_LIVED`], in seconds.
pub const SHORT_LIVED_SECONDS: u64 = 4;

/// A test user of the realm.
#[derive(Debug, Clone, Copy)]
pub struct TestUser {
    /// Keycloak's user id (fixed in the realm file): the `sub` of the user's tokens.
    pub id: &'static str,
    /// The login name.
    pub username: &'static str,
    /// The e-mail address.
    pub email: &'static str,
    /// The full name.
    pub name: &'static str,
}

/// Alice, the realm's first user.
pub const ALICE: TestUser =
    TestUser { id: "f1234567-89ab-cdef-0123-456789abcdef", username: "alice", email: "alice@corp.example.com", name: "Alice Smith" };
/// Bob, the realm's second user.
pub const BOB: TestUser =
    TestUser { id: "0b6e3c2a-5d4f-4e1a-9c7b-2f8d1e6a4b3c", username: "bob", email: "bob@corp.example.com", name: "Bob Jones" };

/// The file the realm is imported from.
pub fn realm_file() -> PathBuf {
    workspace_root().join("examples/keycloak/dual-auth-realm.json")
}

fn keycloak_root() -> PathBuf {
    workspace_root().join("target/it/keycloak")
}

/// Where `cargo xtask setup` installs the distribution.
pub fn install_dir() -> PathBuf {
    keycloak_root().join("dist")
}

/// The stamp `cargo xtask setup` writes last: `name=value` lines.
pub const INSTALL_STAMP: &str = ".dual-auth-installed";

/// What `cargo xtask setup` installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The Keycloak version (`26.7.3`).
    pub version: String,
    /// The JDK it runs on; `None`: the `java` on the PATH.
    pub java_home: Option<PathBuf>,
}

/// Reads the install stamp.
///
/// # Errors
/// When Keycloak is not installed (with the command that installs it).
pub fn installed() -> Result<Installed, String> {
    let stamp = install_dir().join(INSTALL_STAMP);
    let text = std::fs::read_to_string(&stamp)
        .map_err(|_| format!("Keycloak is not installed under {}: run `cargo xtask setup`", install_dir().display()))?;
    let value = |name: &str| text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix('=')).map(str::to_owned);
    let version = value("version").ok_or_else(|| format!("{} names no version: run `cargo xtask setup`", stamp.display()))?;
    let java_home = value("java_home").filter(|home| !home.is_empty()).map(PathBuf::from);
    Ok(Installed { version, java_home })
}

fn run_checked(command: &mut Command, what: &str) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("cannot {what}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("cannot {what}: {status}")) }
}

/// Stops the server when the test process's end closes our standard input, or on a
/// signal; then deletes the server's home. `setsid` puts kc.sh and its java in a process
/// group of their own, so one signal reaches both and Ctrl-C in a terminal reaches only us.
/// (`kill -SIG -PGID`, without `--`: dash's `kill` takes `--` for a process id.)
const WATCHDOG: &str = r#"
run_dir=$1; log=$2; shift 2
setsid "$@" >>"$log" 2>&1 </dev/null &
server=$!
echo "$server" > "$run_dir/server.pid"
stop() {
  # Ignored from here on: a terminal closing (SIGHUP) must not cut the clean-up short.
  trap '' TERM INT HUP
  kill -TERM "-$server" 2>/dev/null
  ( sleep 30; kill -KILL "-$server" 2>/dev/null ) &
  killer=$!
  wait "$server" 2>/dev/null
  kill -KILL "$killer" 2>/dev/null
  rm -rf "$run_dir"
  exit 0
}
trap stop TERM INT HUP
while read -r _; do :; done
stop
"#;

/// A running Keycloak with the dual-auth realm. Stops when dropped.
pub struct Keycloak {
    watchdog: Child,
    watchdog_stdin: Option<ChildStdin>,
    /// Its HTTPS port on 127.0.0.1 (`https://localhost:PORT`).
    pub port: u16,
    /// The CA its certificate chains to.
    pub ca: TestCa,
    run_dir: PathBuf,
    agent_secret: String,
    unrelated_agent_secret: String,
    login_client_secret: String,
    web_client_secret: String,
    user_password: String,
    admin_password: String,
    /// How long it took from spawn to "started".
    pub started_in: Duration,
    /// The Keycloak version.
    pub version: String,
}

impl std::fmt::Debug for Keycloak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keycloak").field("port", &self.port).field("run_dir", &self.run_dir).finish_non_exhaustive()
    }
}

impl Keycloak {
    /// Starts it on a free port.
    ///
    /// # Errors
    /// When it is not installed (`cargo xtask setup` installs it), or does not start within
    /// five minutes (with the end of its log).
    pub fn start() -> Result<Self, String> {
        Self::start_on(None)
    }

    /// As [`Keycloak::start`], on `port` when given.
    ///
    /// # Errors
    /// As [`Keycloak::start`].
    pub fn start_on(port: Option<u16>) -> Result<Self, String> {
        let installed = installed()?;
        let install = install_dir();
        let port = port.unwrap_or_else(closed_port);
        let run_dir = keycloak_root().join("runs").join(format!("{}-{port}", std::process::id()));
        prune_stale_runs();
        let _ = std::fs::remove_dir_all(&run_dir);
        let fail = |e: std::io::Error| format!("cannot prepare {}: {e}", run_dir.display());
        std::fs::create_dir_all(keycloak_root().join("runs")).map_err(fail)?;
        // A home of its own, hard-linked to the built distribution: only data/ is written.
        run_checked(Command::new("cp").arg("-al").arg(&install).arg(&run_dir), "copy the Keycloak home")?;
        let import = run_dir.join("data/import");
        std::fs::create_dir_all(&import).map_err(fail)?;

        let ca = TestCa::new();
        let (cert, key) = ca.write_server_files(&run_dir);
        std::fs::write(run_dir.join("ca.pem"), ca.ca_pem()).map_err(fail)?;
        let agent_key = openssl::rsa::Rsa::generate(2048).and_then(openssl::pkey::PKey::from_rsa).map_err(|e| format!("RSA key: {e}"))?;
        let agent_key_pem = agent_key.private_key_to_pem_pkcs8().map_err(|e| format!("RSA key PEM: {e}"))?;
        let agent_key_path = run_dir.join("agent-key.pem");
        std::fs::write(&agent_key_path, &agent_key_pem).map_err(fail)?;
        // As a user keeps a private key (dual-auth warns about one that others can read).
        std::fs::set_permissions(&agent_key_path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(fail)?;
        let rsa = agent_key.rsa().map_err(|e| format!("RSA key: {e}"))?;
        let jwks = json!({"keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": KEY_AGENT_KID,
            "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()), "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec()),
        }]});

        // The application's key: it signs JWT authorization grant assertions about its users.
        let app_key = openssl::rsa::Rsa::generate(2048).and_then(openssl::pkey::PKey::from_rsa).map_err(|e| format!("RSA key: {e}"))?;
        let app_key_path = run_dir.join("app-key.pem");
        std::fs::write(&app_key_path, app_key.private_key_to_pem_pkcs8().map_err(|e| format!("RSA key PEM: {e}"))?).map_err(fail)?;
        std::fs::set_permissions(&app_key_path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(fail)?;
        // As the admin console keeps it: the SPKI's base64 on one line, without PEM armour.
        let app_public_key =
            base64::engine::general_purpose::STANDARD.encode(app_key.public_key_to_der().map_err(|e| format!("RSA public key DER: {e}"))?);

        let agent_secret = random_secret();
        let unrelated_agent_secret = random_secret();
        let login_client_secret = random_secret();
        let web_client_secret = random_secret();
        let user_password = random_secret();
        let admin_password = random_secret();
        let realm = render_realm(&[
            ("DUAL_AUTH_KEYCLOAK_AGENT_SECRET", agent_secret.clone()),
            ("DUAL_AUTH_KEYCLOAK_AGENT_JWKS", jwks.to_string()),
            ("DUAL_AUTH_KEYCLOAK_WEB_SECRET", web_client_secret.clone()),
            ("DUAL_AUTH_KEYCLOAK_API_SECRET", random_secret()),
            ("DUAL_AUTH_KEYCLOAK_API_AUDIENCE", API_AUDIENCE.to_owned()),
            ("DUAL_AUTH_KEYCLOAK_USER_PASSWORD", user_password.clone()),
            ("DUAL_AUTH_KEYCLOAK_UNRELATED_AGENT_SECRET", unrelated_agent_secret.clone()),
            ("DUAL_AUTH_KEYCLOAK_APP_ISSUER", APP_ISSUER.to_owned()),
            ("DUAL_AUTH_KEYCLOAK_APP_PUBLIC_KEY", app_public_key),
            ("DUAL_AUTH_KEYCLOAK_APP_KEY_ID", APP_KEY_ID.to_owned()),
        ])?;
        let realm = with_login_clients(&realm, &login_client_secret)?;
        std::fs::write(import.join("dual-auth-realm.json"), realm).map_err(fail)?;

        let log = run_dir.join("keycloak.log");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg("keycloak-watchdog")
            .arg(&run_dir)
            .arg(&log)
            .arg(run_dir.join("bin/kc.sh"))
            .args(["start", "--optimized", "--http-enabled=false", "--http-host=127.0.0.1"])
            .arg(format!("--https-port={port}"))
            .arg(format!("--hostname=https://localhost:{port}"))
            .arg(format!("--https-certificate-file={}", cert.display()))
            .arg(format!("--https-certificate-key-file={}", key.display()))
            .args(["--import-realm", "--log=file", "--log-file"])
            .arg(run_dir.join("data/log/keycloak.log"))
            .env("KC_BOOTSTRAP_ADMIN_USERNAME", "admin")
            .env("KC_BOOTSTRAP_ADMIN_PASSWORD", &admin_password)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(java_home) = &installed.java_home {
            command.env("JAVA_HOME", java_home);
        }
        let started = Instant::now();
        let mut watchdog = command.spawn().map_err(|e| format!("cannot start Keycloak: {e}"))?;
        let watchdog_stdin = watchdog.stdin.take();
        let mut server = Self {
            watchdog,
            watchdog_stdin,
            port,
            ca,
            run_dir,
            agent_secret,
            unrelated_agent_secret,
            login_client_secret,
            web_client_secret,
            user_password,
            admin_password,
            started_in: Duration::ZERO,
            version: installed.version,
        };
        server.wait_until_started(Duration::from_secs(300))?;
        server.started_in = started.elapsed();
        Ok(server)
    }

    fn wait_until_started(&self, timeout: Duration) -> Result<(), String> {
        let log = self.run_dir.join("data/log/keycloak.log");
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("started in") && text.contains("Listening on:") {
                return Ok(());
            }
            let pid = std::fs::read_to_string(self.run_dir.join("server.pid")).ok();
            let gone = pid.is_some_and(|pid| !process_alive(pid.trim()));
            if gone || Instant::now() > deadline {
                let console = std::fs::read_to_string(self.run_dir.join("keycloak.log")).unwrap_or_default();
                let tail: Vec<&str> = text.lines().chain(console.lines()).rev().take(40).collect();
                let why = if gone { "exited while starting" } else { "did not start within five minutes" };
                return Err(format!("Keycloak {why}; the end of its logs:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n")));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `https://localhost:PORT`.
    pub fn base_url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// The realm's issuer: `https://localhost:PORT/realms/dual-auth`.
    pub fn issuer(&self) -> String {
        format!("{}/realms/{REALM}", self.base_url())
    }

    /// The realm's token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer())
    }

    /// The realm's JWKS.
    pub fn jwks_url(&self) -> String {
        format!("{}/protocol/openid-connect/certs", self.issuer())
    }

    /// The client secret of [`SECRET_AGENT`] (made for this run).
    pub fn agent_secret(&self) -> &str {
        &self.agent_secret
    }

    /// The private key (PKCS#8 PEM) registered for [`KEY_AGENT`] as [`KEY_AGENT_KID`].
    pub fn agent_key_path(&self) -> PathBuf {
        self.run_dir.join("agent-key.pem")
    }

    /// The client secret of [`UNRELATED_AGENT`] (made for this run).
    pub fn unrelated_agent_secret(&self) -> &str {
        &self.unrelated_agent_secret
    }

    /// The application's private key (PKCS#8 PEM, RS256), registered as [`APP_KEY_ID`] on
    /// the identity provider [`APP_IDP`]: it signs JWT authorization grant assertions
    /// (`iss` [`APP_ISSUER`], `sub` the user's id at the application, `aud`
    /// [`Keycloak::issuer`]).
    pub fn app_key_path(&self) -> PathBuf {
        self.run_dir.join("app-key.pem")
    }

    /// The `iss` the identity provider [`APP_IDP`] expects: [`APP_ISSUER`].
    pub fn app_issuer(&self) -> &'static str {
        APP_ISSUER
    }

    /// The CA certificate file (for `DUAL_AUTH_CA_BUNDLE`).
    pub fn ca_path(&self) -> PathBuf {
        self.run_dir.join("ca.pem")
    }

    /// The secret of the web application's client ([`WEB_CLIENT`]: authorization code with
    /// PKCE), made for this run.
    pub fn web_client_secret(&self) -> &str {
        &self.web_client_secret
    }

    /// Sets [`WEB_CLIENT`]'s redirect URIs to exactly `redirect_uri` (a test's web
    /// application learns its port only once it listens), through the admin API.
    ///
    /// # Panics
    /// When Keycloak refuses.
    pub async fn set_web_redirect_uri(&self, redirect_uri: &str) {
        let (status, clients) = self.admin(reqwest::Method::GET, &format!("/clients?clientId={WEB_CLIENT}"), None).await;
        assert_eq!(status, 200, "{clients}");
        let mut client = clients.get(0).cloned().unwrap_or_else(|| panic!("no client {WEB_CLIENT}: {clients}"));
        let id = client["id"].as_str().expect("client id").to_owned();
        client["redirectUris"] = json!([redirect_uri]);
        let (status, body) = self.admin(reqwest::Method::PUT, &format!("/clients/{id}"), Some(client)).await;
        assert_eq!(status, 204, "updating {WEB_CLIENT}'s redirect URIs: {body}");
    }

    /// The password of the test users (made for this run).
    pub fn user_password(&self) -> &str {
        &self.user_password
    }

    /// The variables that point `dual-auth` at this server: the Keycloak vendor, the
    /// `client_secret_jwt` agent, the API audience and the CA.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        [
            ("DUAL_AUTH_VENDOR", "keycloak".to_owned()),
            ("KEYCLOAK_TOKEN_URL", self.token_url()),
            ("AGENT_CLIENT_ID", SECRET_AGENT.to_owned()),
            ("AGENT_CLIENT_SECRET", self.agent_secret.clone()),
            ("API_AUDIENCE", API_AUDIENCE.to_owned()),
            ("DUAL_AUTH_CA_BUNDLE", self.ca_path().display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The same agent with `private_key_jwt` instead: `AGENT_CLIENT_ID`,
    /// `AGENT_CLIENT_AUTH_METHOD`, `AGENT_PRIVATE_KEY_PATH`, `AGENT_KEY_ID`.
    pub fn key_agent_env_pairs(&self) -> Vec<(String, String)> {
        [
            ("AGENT_CLIENT_ID", KEY_AGENT.to_owned()),
            ("AGENT_CLIENT_AUTH_METHOD", "private_key_jwt".to_owned()),
            ("AGENT_PRIVATE_KEY_PATH", self.agent_key_path().display().to_string()),
            ("AGENT_KEY_ID", KEY_AGENT_KID.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// What `cargo xtask keycloak` prints: shell `export` lines for [`Keycloak::env_pairs`],
    /// then, as comments, the `private_key_jwt` agent, the test users and the admin console.
    pub fn exports(&self) -> String {
        let quote = |value: &str| format!("'{}'", value.replace('\'', r"'\''"));
        let mut text = format!(
            "# Keycloak {} at {} (realm {REALM}), ready after {:.1} s. Ctrl-C stops it.\n\
             # A throw-away CA, secrets and passwords, for this run only: never use them elsewhere.\n",
            self.version,
            self.base_url(),
            self.started_in.as_secs_f64()
        );
        for (name, value) in self.env_pairs() {
            text.push_str(&format!("export {name}={}\n", quote(&value)));
        }
        text.push_str("# The same agent with private_key_jwt instead of client_secret_jwt:\n");
        let pairs: Vec<String> = self.key_agent_env_pairs().iter().map(|(name, value)| format!("{name}={}", quote(value))).collect();
        text.push_str(&format!("#   export {}\n", pairs.join(" ")));
        text.push_str(&format!("# Test users (password {}):\n", quote(&self.user_password)));
        for user in [ALICE, BOB] {
            text.push_str(&format!(
                "#   {} <{}>, user id {}: dual-auth token --scope finance.read --sub {}\n",
                user.username, user.email, user.id, user.id
            ));
        }
        text.push_str(&format!("# Admin console: {}/admin/ (admin / {})\n", self.base_url(), quote(&self.admin_password)));
        text
    }

    fn http(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.ca.ca_pem().as_bytes()).expect("CA PEM");
        reqwest::Client::builder().tls_certs_merge([ca]).timeout(Duration::from_secs(30)).build().expect("HTTP client")
    }

    /// An access token of the bootstrap administrator (`admin-cli` in `master`).
    ///
    /// # Panics
    /// When Keycloak refuses.
    pub async fn admin_token(&self) -> String {
        let response = self
            .http()
            .post(format!("{}/realms/master/protocol/openid-connect/token", self.base_url()))
            .form(&[("grant_type", "password"), ("client_id", "admin-cli"), ("username", "admin"), ("password", &self.admin_password)])
            .send()
            .await
            .expect("admin token request");
        let status = response.status();
        let body: Value = response.json().await.expect("admin token JSON");
        assert!(status.is_success(), "admin token: {status} {body}");
        body["access_token"].as_str().expect("access_token").to_owned()
    }

    /// A test user's access token, from the password grant of a test-only client
    /// ([`LOGIN_CLIENT`], [`LOGIN_CLIENT_OTHER_AUDIENCE`] or [`LOGIN_CLIENT_SHORT_LIVED`]):
    /// the evidence of a user session, as a web application holds it.
    ///
    /// # Panics
    /// When Keycloak refuses (with its answer).
    pub async fn user_access_token(&self, client: &str, username: &str) -> String {
        let response = self
            .http()
            .post(self.token_url())
            .basic_auth(client, Some(&self.login_client_secret))
            .form(&[("grant_type", "password"), ("username", username), ("password", &self.user_password)])
            .send()
            .await
            .expect("user token request");
        let status = response.status();
        let body: Value = response.json().await.expect("user token JSON");
        assert!(status.is_success(), "user token for {username} through {client}: {status} {body}");
        body["access_token"].as_str().expect("access_token").to_owned()
    }

    /// Calls the admin REST API (`/admin/realms/dual-auth{path}`) as the administrator;
    /// returns the status and the JSON body (`Null` when empty).
    ///
    /// # Panics
    /// When Keycloak cannot be reached or the body is not JSON.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request =
            self.http().request(method, format!("{}/admin/realms/{REALM}{path}", self.base_url())).bearer_auth(self.admin_token().await);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("admin body");
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("admin JSON") })
    }

    /// The realm's JWKS as Keycloak publishes it now.
    ///
    /// # Panics
    /// When it cannot be fetched.
    pub async fn jwks(&self) -> Value {
        self.http().get(self.jwks_url()).send().await.expect("JWKS").json().await.expect("JWKS JSON")
    }

    /// Stops the server now (as dropping it does).
    pub fn stop(&mut self) {
        // Closing the watchdog's stdin makes it stop the server and delete its home.
        self.watchdog_stdin = None;
        let _ = self.watchdog.wait();
    }
}

impl Drop for Keycloak {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Removes the homes of servers whose test process is gone (killed before its watchdog
/// could clean up). Homes are named `PID-PORT`.
fn prune_stale_runs() {
    let Ok(entries) = std::fs::read_dir(keycloak_root().join("runs")) else { return };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let owner = name.split('-').next().unwrap_or_default().to_owned();
        let server_alive = std::fs::read_to_string(entry.path().join("server.pid")).is_ok_and(|pid| process_alive(pid.trim()));
        if !process_alive(&owner) && !server_alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn process_alive(pid: &str) -> bool {
    // A zombie ("Z") has exited already; only its parent has not collected it yet.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

/// 32 random bytes, base64url: a secret for this run only.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes).expect("random bytes");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The rendered realm with the test-only password-grant clients added (never in the shipped
/// file): [`LOGIN_CLIENT`] and [`LOGIN_CLIENT_SHORT_LIVED`] with [`WEB_CLIENT`]'s audience
/// mappers (its tokens name the agents), [`LOGIN_CLIENT_OTHER_AUDIENCE`] without them.
fn with_login_clients(realm: &str, secret: &str) -> Result<String, String> {
    let mut realm: Value = serde_json::from_str(realm).map_err(|e| format!("the rendered realm is not JSON: {e}"))?;
    let clients = realm["clients"].as_array_mut().ok_or("the realm has no clients")?;
    let web = clients.iter().find(|c| c["clientId"] == WEB_CLIENT).ok_or("the realm has no web client")?;
    let audience_mappers: Vec<Value> = web["protocolMappers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["protocolMapper"] == "oidc-audience-mapper")
        .cloned()
        .collect();
    if audience_mappers.is_empty() {
        return Err(format!("{WEB_CLIENT} has no audience mapper: the agents could not exchange its tokens"));
    }
    let login = |client_id: &str, mappers: &[Value], lifespan: Option<u64>| {
        let mut attributes = serde_json::Map::new();
        if let Some(seconds) = lifespan {
            attributes.insert("access.token.lifespan".into(), json!(seconds.to_string()));
        }
        json!({
            "clientId": client_id,
            "name": "Test only: logs a test user in with the password grant (added by dual-auth-test-support)",
            "enabled": true,
            "protocol": "openid-connect",
            "publicClient": false,
            "clientAuthenticatorType": "client-secret",
            "secret": secret,
            "standardFlowEnabled": false,
            "implicitFlowEnabled": false,
            "directAccessGrantsEnabled": true,
            "serviceAccountsEnabled": false,
            "attributes": attributes,
            "defaultClientScopes": ["basic", "profile", "email"],
            "optionalClientScopes": ["finance.read", "finance.write"],
            "protocolMappers": mappers,
        })
    };
    clients.push(login(LOGIN_CLIENT, &audience_mappers, None));
    clients.push(login(LOGIN_CLIENT_OTHER_AUDIENCE, &[], None));
    clients.push(login(LOGIN_CLIENT_SHORT_LIVED, &audience_mappers, Some(SHORT_LIVED_SECONDS)));
    Ok(realm.to_string())
}

/// The shipped realm with each `${NAME}` replaced by its value, escaped for a JSON string.
/// Every placeholder must be given, and every given one used.
fn render_realm(values: &[(&str, String)]) -> Result<String, String> {
    let path = realm_file();
    let mut text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    for (name, value) in values {
        let placeholder = format!("${{{name}}}");
        if !text.contains(&placeholder) {
            return Err(format!("{} has no {placeholder}", path.display()));
        }
        let escaped = serde_json::to_string(value).map_err(|e| e.to_string())?;
        text = text.replace(&placeholder, &escaped[1..escaped.len() - 1]);
    }
    if let Some(start) = text.find("${DUAL_AUTH_KEYCLOAK_") {
        let name: String = text[start..].chars().take_while(|c| *c != '}').collect();
        return Err(format!("{} has a placeholder with no value: {name}}}", path.display()));
    }
    serde_json::from_str::<Value>(&text).map_err(|e| format!("the rendered realm is not JSON: {e}"))?;
    Ok(text)
}
