//! The `dual-auth` command.
//!
//! Output goes to stdout; every failure is one line on stderr and a non-zero exit status
//! (1 for a failed operation, 2 for a usage error).
#![forbid(unsafe_code)]
// A command-line program: printing is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod demo;
use dual_auth::dangerous::UnverifiedJwt;
use dual_auth::http::{CA_BUNDLE_SETTING, HttpsUrl};
use dual_auth::prelude::*;
use dual_auth::{ErrorChain, SigningAlgorithm, Vendor, generate_key_pair};
use serde_json::{Value, json};

/// dual-auth: let an AI agent act with two identities, its own and the human's.
#[derive(Parser, Debug)]
#[command(name = "dual-auth", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate the application's key pair: app-private-key.pem (mode 0600) and app-public-key.pem.
    Keygen(KeygenArgs),
    /// Sign or verify out-of-session act JWTs.
    #[command(subcommand)]
    Act(ActCommand),
    /// Print any JWT's header and claims WITHOUT verifying it.
    Inspect {
        /// The JWT; read from stdin when absent.
        token: Option<String>,
    },
    /// Ask the configured identity provider for a dual-subject token (configuration from the
    /// environment, .env, or the secret store DUAL_AUTH_SECRETS_BACKEND names).
    Token(TokenArgs),
    /// Get a token as `token` does, then call an API with it and print the answer.
    Call(CallArgs),
    /// Verify a dual-subject access token as an API would (signature through the issuer's
    /// JWKS, issuer, audience, times, layout; Entra ID's act assertion) and print the agent
    /// and the human as JSON. DUAL_AUTH_CA_BUNDLE adds trusted roots for the JWKS fetch.
    Verify(TokenVerifyArgs),
    /// Run the guide's story end to end on an embedded identity provider and API.
    Demo {
        /// Which vendor's dialect.
        #[arg(long, value_enum, default_value_t = DemoVendor::All)]
        vendor: DemoVendor,
        /// Which flow.
        #[arg(long, value_enum, default_value_t = DemoFlow::All)]
        flow: DemoFlow,
    },
    /// Run the development identity provider and demo API until Ctrl-C, printing the
    /// environment variables that point the library at them.
    DevIdp {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8443)]
        port: u16,
        /// Where to write its CA certificate and the application's key pair.
        #[arg(long, default_value = "dual-auth-dev-idp")]
        out_dir: PathBuf,
        /// Replace the CA certificate and key files a previous run left in --out-dir.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args, Debug)]
struct TokenArgs {
    /// A scope to ask for (repeat for more).
    #[arg(long = "scope", required = true)]
    scopes: Vec<String>,
    /// The agent's client id (default: AGENT_CLIENT_ID of the configuration).
    #[arg(long)]
    agent_id: Option<String>,
    /// Print the access token (and act assertion) too; they are secrets.
    #[arg(long)]
    show_token: bool,
    #[command(flatten)]
    evidence: EvidenceInput,
    #[command(flatten)]
    act: ActInput,
}

#[derive(Args, Debug)]
struct CallArgs {
    /// The API URL (https only).
    #[arg(long)]
    url: String,
    /// The HTTP method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// A JSON body to send.
    #[arg(long)]
    json: Option<String>,
    /// A scope to ask for (repeat for more).
    #[arg(long = "scope", required = true)]
    scopes: Vec<String>,
    /// The agent's client id (default: AGENT_CLIENT_ID of the configuration).
    #[arg(long)]
    agent_id: Option<String>,
    #[command(flatten)]
    evidence: EvidenceInput,
    #[command(flatten)]
    act: ActInput,
}

/// The human proven by evidence someone else issued (the verified modes): the vendor's
/// delegation grant (Keycloak, Auth0, Okta: token exchange; Entra ID: on-behalf-of).
#[derive(Args, Debug)]
struct EvidenceInput {
    /// A file holding the human's token (the web session's access or ID token, or one the
    /// application exchanged for this agent); trimmed. The identity provider verifies it.
    #[arg(long, conflicts_with_all = ["act_json", "sub"], required_unless_present_any = ["act_json", "sub"])]
    subject_token_file: Option<PathBuf>,
    /// Its type: access_token, id_token, jwt, or a URI (RFC 8693 §3).
    #[arg(long, requires = "subject_token_file", default_value = "access_token")]
    subject_token_type: String,
    /// A file holding the agent's own token (RFC 8693 actor_token).
    #[arg(long, requires = "subject_token_file", conflicts_with = "ActInput")]
    actor_token_file: Option<PathBuf>,
    /// Its type: access_token, id_token, jwt, or a URI.
    #[arg(long, requires = "actor_token_file", default_value = "jwt")]
    actor_token_type: String,
    /// RFC 8693 audience: where the token will be used (a client id for Keycloak).
    #[arg(long, requires = "subject_token_file", conflicts_with = "ActInput")]
    audience: Option<String>,
    /// RFC 8693 resource: the URI of the API.
    #[arg(long, requires = "subject_token_file", conflicts_with = "ActInput")]
    resource: Option<String>,
}

impl EvidenceInput {
    /// The evidence from the files, refused before any request when a file is missing,
    /// unreadable or empty.
    fn read(&self) -> Result<Option<(SubjectToken, Option<SubjectToken>)>, String> {
        let Some(path) = &self.subject_token_file else { return Ok(None) };
        let token_type: SubjectTokenType = self.subject_token_type.parse().map_err(|e: IamError| format!("--subject-token-type: {e}"))?;
        let subject = read_token_file("--subject-token-file", path, token_type)?;
        let actor = match &self.actor_token_file {
            Some(path) => {
                let token_type = self.actor_token_type.parse().map_err(|e: IamError| format!("--actor-token-type: {e}"))?;
                Some(read_token_file("--actor-token-file", path, token_type)?)
            }
            None => None,
        };
        Ok(Some((subject, actor)))
    }
}

/// The largest token file read: tokens are a few KiB; a larger file is not one.
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// A token from a file, trimmed; the message names the option and the path, never the content.
fn read_token_file(option: &str, path: &std::path::Path, token_type: SubjectTokenType) -> Result<SubjectToken, String> {
    let shown = dual_auth::escape_untrusted(&path.display().to_string(), false);
    let cannot = |e: std::io::Error| format!("{option} {shown}: cannot read it ({})", e.kind());
    let mut text = String::new();
    std::fs::File::open(path).and_then(|file| file.take(MAX_TOKEN_FILE_BYTES + 1).read_to_string(&mut text)).map_err(cannot)?;
    if text.len() as u64 > MAX_TOKEN_FILE_BYTES {
        dual_auth::secrecy::zeroize::Zeroize::zeroize(&mut text);
        return Err(format!("{option} {shown}: larger than {MAX_TOKEN_FILE_BYTES} bytes: not a token"));
    }
    SubjectToken::new(text, token_type).map_err(|e| match e {
        IamError::InvalidRequest { reason } => format!("{option} {shown}: {reason}"),
        other => format!("{option} {shown}: {other}"),
    })
}

#[derive(Args, Debug)]
struct TokenVerifyArgs {
    /// The issuer trusted, exactly as the token's `iss` says it.
    #[arg(long)]
    issuer: String,
    /// The audience this API is known by (the token's `aud` must name it).
    #[arg(long)]
    audience: String,
    /// The issuer's JWKS URL (default: found by OIDC discovery from the issuer).
    #[arg(long)]
    jwks_url: Option<String>,
    /// How the token names the agent and the human.
    #[arg(long, value_enum, default_value_t = LayoutArg::DualAuth)]
    layout: LayoutArg,
    /// Entra ID: the X-Act-Assertion that came with the token.
    #[arg(long, requires = "app_public_key")]
    act_assertion: Option<String>,
    /// Entra ID: the application's public key (PEM) that signs act assertions.
    #[arg(long, requires = "act_assertion")]
    app_public_key: Option<PathBuf>,
    /// Entra ID: the application's id, required as the assertion's `iss` when given.
    #[arg(long, requires = "act_assertion")]
    app_id: Option<String>,
    /// Entra ID: the assertion's audience (default: --audience).
    #[arg(long, requires = "act_assertion")]
    assertion_audience: Option<String>,
    /// A scope the token must carry (repeat for more).
    #[arg(long = "require-scope")]
    required_scopes: Vec<String>,
    /// The `typ` header required, for example at+jwt.
    #[arg(long = "type")]
    required_type: Option<String>,
    /// Clock skew tolerated, in seconds.
    #[arg(long, default_value_t = 5)]
    leeway: u64,
    /// The access token; read from stdin when absent.
    token: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LayoutArg {
    /// `sub` = the agent, `act` = the human (Keycloak, Auth0, Okta as the guides configure them).
    DualAuth,
    /// `sub` = the human, `act.sub` = the agent, nested for delegation chains (token exchange).
    Rfc8693,
    /// What the delegation grants give: `sub` = the human, the agent from `client_id`, `azp`,
    /// `cid` or `appid`, any `act` chain kept (the identity provider verified the human).
    Delegated,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum DemoVendor {
    Keycloak,
    Auth0,
    Okta,
    Entraid,
    All,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum DemoFlow {
    /// The guide's in-session flow (self-asserted act).
    InSession,
    /// The guide's out-of-session flow (a verified act JWT, then a self-asserted act).
    OutOfSession,
    /// Both of the guide's flows.
    Both,
    /// The verified mode: the human's token, sent with the vendor's delegation grant.
    Verified,
    /// MCP: an rmcp agent calls the demo MCP server's tools (Auth0's dialect only).
    Mcp,
    /// All of them (MCP with Auth0 only).
    All,
}

#[derive(Args, Debug)]
struct KeygenArgs {
    /// Directory to write the two files into (created if missing; existing files are kept).
    #[arg(long)]
    out_dir: PathBuf,
    /// Algorithm: RS256 talks to the Python package; ES256 and EdDSA sign far faster.
    #[arg(long, value_enum, default_value_t = KeyAlg::Rs256)]
    alg: KeyAlg,
    /// RSA key size in bits (RS256 only).
    #[arg(long, default_value_t = 2048)]
    bits: u32,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum KeyAlg {
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "ES256")]
    Es256,
    #[value(name = "EdDSA")]
    EdDsa,
}

impl From<KeyAlg> for SigningAlgorithm {
    fn from(alg: KeyAlg) -> Self {
        match alg {
            KeyAlg::Rs256 => SigningAlgorithm::Rs256,
            KeyAlg::Es256 => SigningAlgorithm::Es256,
            KeyAlg::EdDsa => SigningAlgorithm::EdDsa,
        }
    }
}

#[derive(Subcommand, Debug)]
enum ActCommand {
    /// Sign an act JWT for a remote agent and print it.
    Sign(SignArgs),
    /// Verify an act JWT and print the act as JSON.
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("human").required(true).multiple(true).args(["act_json", "sub"])))]
struct SignArgs {
    /// The application's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long)]
    private_key: PathBuf,
    /// The agent endpoint (https://...), written as `aud`.
    #[arg(long)]
    audience: String,
    /// Lifetime in seconds (10 to 300).
    #[arg(long, default_value_t = 60)]
    ttl: u64,
    /// `iss` (and `sub`); the default is the upstream "application".
    #[arg(long)]
    issuer: Option<String>,
    /// Key id to write as `kid`.
    #[arg(long)]
    key_id: Option<String>,
    #[command(flatten)]
    act: ActInput,
}

/// The human: either a whole act object, or its fields (the guide's self-asserted mode
/// for `token` and `call`).
#[derive(Args, Debug)]
#[group(multiple = true)]
struct ActInput {
    /// The act as a JSON object, for example '{"sub":"user_12345","email":"alice@corp.example.com"}'.
    #[arg(long, conflicts_with_all = ["sub", "email", "name", "oid"])]
    act_json: Option<String>,
    /// The identity provider's user id.
    #[arg(long)]
    sub: Option<String>,
    /// E-mail address.
    #[arg(long, requires = "sub")]
    email: Option<String>,
    /// Display name.
    #[arg(long, requires = "sub")]
    name: Option<String>,
    /// Entra ID object id.
    #[arg(long, requires = "sub")]
    oid: Option<String>,
}

impl ActInput {
    fn to_act(&self) -> Result<Act, String> {
        if let Some(json) = &self.act_json {
            let value: Value = serde_json::from_str(json).map_err(|e| format!("--act-json is not valid JSON: {e}"))?;
            return Act::from_value(value).map_err(|e| format!("--act-json: {e}"));
        }
        let sub = self.sub.as_deref().ok_or("give --act-json or --sub")?;
        let mut act = Act::new(sub).map_err(|e| format!("--sub: {e}"))?;
        if let Some(email) = &self.email {
            act = act.with_email(email);
        }
        if let Some(name) = &self.name {
            act = act.with_name(name);
        }
        if let Some(oid) = &self.oid {
            act = act.with_oid(oid);
        }
        Ok(act)
    }
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// The application's public key (PEM: SPKI or PKCS#1).
    #[arg(long)]
    public_key: PathBuf,
    /// The audience expected: this agent's endpoint URL, exactly as the application signs it.
    #[arg(long)]
    audience: String,
    /// The issuer expected (default "application", the upstream value).
    #[arg(long, conflicts_with = "any_issuer")]
    issuer: Option<String>,
    /// Accept any issuer.
    #[arg(long)]
    any_issuer: bool,
    /// Clock skew tolerated, in seconds.
    #[arg(long, default_value_t = 5)]
    leeway: u64,
    /// The longest lifetime (exp - iat) accepted, in seconds.
    #[arg(long, default_value_t = 300)]
    max_lifetime: u64,
    /// The JWT; read from stdin when absent.
    token: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("DUAL_AUTH_LOG").unwrap_or_else(|_| "warn".into()))
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // One line, whatever the error's own formatting, and nothing a terminal obeys.
            eprintln!("dual-auth: {}", dual_auth::escape_untrusted(&message.replace('\n', " "), false));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Keygen(args) => keygen(&args),
        Command::Act(ActCommand::Sign(args)) => sign(&args),
        Command::Act(ActCommand::Verify(args)) => verify(args),
        Command::Inspect { token } => inspect(token),
        Command::Verify(args) => runtime()?.block_on(verify_token(args)),
        Command::Token(args) => runtime()?.block_on(token(&args)),
        Command::Call(args) => runtime()?.block_on(call(&args)),
        Command::Demo { vendor, flow } => runtime()?.block_on(run_demo(vendor, flow)),
        Command::DevIdp { port, out_dir, force } => runtime()?.block_on(run_dev_idp(port, &out_dir, force)),
    }
}

/// Who the token is for: the human's evidence (a verified mode) or a self-asserted act.
struct Human<'a> {
    evidence: &'a EvidenceInput,
    act: &'a ActInput,
}

/// A token and how it was obtained.
struct Obtained {
    token: TokenResponse,
    http: HttpSettings,
    mode: DelegationMode,
}

/// Loads the configuration and gets a token: with the vendor's delegation grant when
/// evidence is given, else the guide's self-asserted act. Evidence is read (and refused
/// when missing or empty) before the configuration or any request.
async fn get_token(scopes: &[String], agent_id: Option<&str>, human: Human<'_>) -> Result<Obtained, String> {
    let evidence = human.evidence.read()?;
    let act = if evidence.is_none() { Some(human.act.to_act()?) } else { None };
    let loaded = dual_auth::load_config(None, None).await.map_err(setup_error)?;
    let agent = agent_id.map_or_else(|| loaded.vendor_config.client_id().to_owned(), str::to_owned);
    let http = loaded.http.clone();
    let adapter = loaded.into_adapter().map_err(error_chain)?;
    let Some((subject, actor)) = evidence else {
        let act = act.ok_or("give --subject-token-file, or --act-json / --sub")?;
        let token = InSessionTokenRequest::new(adapter).request_token(&agent, &act, scopes.iter().cloned()).await.map_err(error_chain)?;
        // After success only: a failure stays one line.
        eprintln!(
            "note: self-asserted act (the guide's mode): no identity provider verified this human; \
             give --subject-token-file for a verified mode"
        );
        return Ok(Obtained { token, http, mode: DelegationMode::SelfAsserted });
    };
    let mode = adapter.delegation_mode().ok_or_else(|| {
        format!("{} is set to self-asserted: unset it or name a verified mode to send --subject-token-file", dual_auth::DELEGATION_SETTING)
    })?;
    let mut request = DelegationRequest::new(&agent, subject, scopes.iter().cloned()).map_err(error_chain)?;
    if let Some(actor) = actor {
        request = request.with_actor(actor);
    }
    if let Some(audience) = &human.evidence.audience {
        request = request.with_audience(audience);
    }
    if let Some(resource) = &human.evidence.resource {
        request = request.with_resource(resource);
    }
    let token = adapter.request_delegated_token(&request).await.map_err(error_chain)?;
    Ok(Obtained { token, http, mode })
}

/// A setup error as one line; a store or vendor this build left out says how to add it.
fn setup_error(error: SetupError) -> String {
    match error {
        SetupError::Config(dual_auth::config::ConfigError::NotCompiled { kind, name, feature }) => format!(
            "the {name} {kind} is not in this build of dual-auth: cargo install --path crates/dual-auth-cli (every store, by default), \
             or add --features {feature} to a --no-default-features build"
        ),
        other => error_chain(other),
    }
}

/// An error and its causes as one line: no error's message repeats its cause.
fn error_chain(error: impl std::error::Error + 'static) -> String {
    ErrorChain(&error).to_string()
}

async fn token(args: &TokenArgs) -> Result<(), String> {
    let human = Human { evidence: &args.evidence, act: &args.act };
    let Obtained { token, mode, .. } = get_token(&args.scopes, args.agent_id.as_deref(), human).await?;
    let expires_at = token.expires_at().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut out = json!({
        "token_type": token.token_type(),
        "issued_token_type": token.issued_token_type(),
        "expires_in": token.expires_in().as_secs(),
        "expires_at": expires_at,
        "scopes": token.scopes(),
        "has_act_assertion": token.has_act_assertion(),
        "dpop_bound": token.is_dpop_bound(),
        "dpop_jkt": token.dpop_key().map(dual_auth::DpopKey::thumbprint),
        "delegation": mode.as_str(),
        "vouched_by": mode.vouched_by(),
    });
    if args.show_token {
        out["access_token"] = json!(token.access_token().expose_secret());
        if let Some(assertion) = token.new_act_assertion().map_err(error_chain)? {
            out["act_assertion"] = json!(assertion.expose_secret());
        }
    }
    println!("{}", serde_json::to_string_pretty(&out).map_err(error_chain)?);
    Ok(())
}

async fn call(args: &CallArgs) -> Result<(), String> {
    let method = dual_auth::api::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("--method {:?} is not an HTTP method", args.method))?;
    let body = match &args.json {
        Some(text) => Some(serde_json::from_str::<Value>(text).map_err(|e| format!("--json is not valid JSON: {e}"))?),
        None => None,
    };
    // Refuse a non-HTTPS URL before asking for a token that would never be used.
    HttpsUrl::parse(&args.url).map_err(|reason| format!("API URL must use HTTPS: --url {reason}"))?;
    let human = Human { evidence: &args.evidence, act: &args.act };
    let Obtained { token, http, .. } = get_token(&args.scopes, args.agent_id.as_deref(), human).await?;
    let mut request = ApiRequest::new(method, &args.url);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = ApiClient::new(http).map_err(error_chain)?.call_api(&token, request).await.map_err(error_chain)?;
    println!("HTTP {}", response.status());
    print_untrusted(&response.text());
    if response.is_success() { Ok(()) } else { Err(format!("the API answered HTTP {}", response.status())) }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| format!("cannot start the runtime: {e}"))
}

async fn run_demo(vendor: DemoVendor, flow: DemoFlow) -> Result<(), String> {
    let vendors: Vec<Vendor> = match vendor {
        DemoVendor::Keycloak => vec![Vendor::Keycloak],
        DemoVendor::Auth0 => vec![Vendor::Auth0],
        DemoVendor::Okta => vec![Vendor::Okta],
        DemoVendor::Entraid => vec![Vendor::EntraId],
        DemoVendor::All => Vendor::ALL.to_vec(),
    };
    let flows: Vec<demo::Flow> = match flow {
        DemoFlow::InSession => vec![demo::Flow::InSession],
        DemoFlow::OutOfSession => vec![demo::Flow::OutOfSession],
        DemoFlow::Both => vec![demo::Flow::InSession, demo::Flow::OutOfSession],
        DemoFlow::Verified => vec![demo::Flow::Verified],
        DemoFlow::Mcp => vec![demo::Flow::Mcp],
        DemoFlow::All => vec![demo::Flow::InSession, demo::Flow::OutOfSession, demo::Flow::Verified, demo::Flow::Mcp],
    };
    let env = demo::start(([127, 0, 0, 1], 0).into()).await?;
    println!("Embedded identity provider and demo API at {} (TLS with a throw-away CA)", env.idp.base_url());
    let mut failures = Vec::new();
    let mut total = 0;
    for vendor in &vendors {
        // The MCP leg needs RFC 8707 `resource`, which of the four only Auth0 takes.
        for flow in flows.iter().filter(|f| **f != demo::Flow::Mcp || *vendor == Vendor::Auth0) {
            total += 1;
            if let Err(e) = demo::run(&env, *vendor, *flow).await {
                println!("\n✗ FAILED: {}", dual_auth::escape_untrusted(&e, false));
                failures.push(format!("{vendor}: {e}"));
            }
        }
    }
    if total == 0 {
        return Err("nothing to run: the MCP flow speaks Auth0's dialect only; add --vendor auth0 (or all)".into());
    }
    println!("\nsummary: {} passed, {} failed", total - failures.len(), failures.len());
    if failures.is_empty() { Ok(()) } else { Err(format!("{} of {total} demo runs failed: {}", failures.len(), failures.join("; "))) }
}

async fn run_dev_idp(port: u16, out_dir: &std::path::Path, force: bool) -> Result<(), String> {
    const CA_FILE: &str = "ca.pem";
    // Like keygen, never replace key files silently: they may be someone's real keys.
    let ours = [CA_FILE, dual_auth::PRIVATE_KEY_FILE, dual_auth::PUBLIC_KEY_FILE].map(|name| out_dir.join(name));
    if let Some(existing) = ours.iter().find(|path| path.symlink_metadata().is_ok()) {
        if !force {
            return Err(format!("{} exists already: remove it, choose another --out-dir, or pass --force", existing.display()));
        }
        for path in &ours {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(format!("{}: {e}", path.display())),
                _ => {}
            }
        }
    }
    let env = demo::start(([127, 0, 0, 1], port).into()).await?;
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let ca = out_dir.join(CA_FILE);
    // create_new: a file (or link) appearing since the check is not written through.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&ca)
        .and_then(|mut file| std::io::Write::write_all(&mut file, env.idp.ca_pem().as_bytes()))
        .map_err(|e| format!("{}: {e}", ca.display()))?;
    // This run's application key pair (the provider trusts it for Entra ID act assertions).
    let (private, public) = env.app_key_pair.write_to_dir(out_dir).map_err(error_chain)?;
    let config = env.idp.config();
    println!("# dual-auth development identity provider at {} (Ctrl-C stops it).", env.idp.base_url());
    println!("# A throw-away CA and client secret, for this run only: never use them elsewhere.");
    for (name, value) in [
        (CA_BUNDLE_SETTING, ca.display().to_string()),
        ("DUAL_AUTH_VENDOR", "keycloak".to_owned()),
        (dual_auth::keycloak::TOKEN_URL_KEY, env.idp.keycloak_token_url()),
        (dual_auth::auth0::TOKEN_URL_KEY, env.idp.auth0_token_url()),
        (dual_auth::okta::TOKEN_URL_KEY, env.idp.okta_token_url()),
        (dual_auth::entraid::TOKEN_URL_KEY, env.idp.entra_token_url()),
        ("AGENT_CLIENT_ID", demo::DEMO_AGENT.to_owned()),
        ("AGENT_CLIENT_SECRET", env.secret.clone()),
        ("API_AUDIENCE", config.api_audience.clone()),
        ("API_URL", env.idp.api_url()),
        (dual_auth::entraid::APP_ID_KEY, demo::DEMO_APP_ID.to_owned()),
        ("APP_PUBLIC_KEY_PATH", public.display().to_string()),
        ("APP_PRIVATE_KEY_PATH", private.display().to_string()),
    ] {
        println!("export {name}='{value}'");
    }
    println!("# For entraid also: export API_AUDIENCE='{}' API_SCOPE='{}/.default'", config.entra_api, config.entra_api);
    tokio::signal::ctrl_c().await.map_err(error_chain)
}

fn keygen(args: &KeygenArgs) -> Result<(), String> {
    let pair = generate_key_pair(args.alg.into(), args.bits).map_err(error_chain)?;
    let (private, public) = pair.write_to_dir(&args.out_dir).map_err(error_chain)?;
    println!("{}", private.display());
    println!("{}", public.display());
    Ok(())
}

fn sign(args: &SignArgs) -> Result<(), String> {
    let act = args.act.to_act()?;
    let mut key = SigningKey::from_pem_file(&args.private_key).map_err(error_chain)?;
    if let Some(kid) = &args.key_id {
        key = key.with_key_id(kid);
    }
    let mut signer = ActJwtSigner::new(key);
    if let Some(issuer) = &args.issuer {
        signer = signer.with_issuer(issuer);
    }
    let jwt = signer.sign(&act, &args.audience, Duration::from_secs(args.ttl)).map_err(error_chain)?;
    println!("{}", jwt.expose_secret());
    Ok(())
}

fn verify(args: VerifyArgs) -> Result<(), String> {
    let token = token_or_stdin(args.token)?;
    let key = VerifyingKey::from_pem_file(&args.public_key).map_err(error_chain)?;
    let mut builder = ActJwtVerifier::builder(key, &args.audience)
        .leeway(Duration::from_secs(args.leeway))
        .max_lifetime(Duration::from_secs(args.max_lifetime));
    if let Some(issuer) = &args.issuer {
        builder = builder.issuer(issuer);
    }
    if args.any_issuer {
        builder = builder.any_issuer();
    }
    let runtime = runtime()?;
    if let Some(guard) = runtime.block_on(shared_replay_guard())? {
        builder = builder.replay_guard(guard);
    }
    let verifier = builder.build().map_err(error_chain)?;
    let verified = runtime.block_on(verifier.verify(&token)).map_err(error_chain)?;
    print_untrusted(&serde_json::to_string(verified.act()).map_err(error_chain)?);
    Ok(())
}

/// With `DUAL_AUTH_REDIS_URL` set, act JWT ids are recorded in Redis: a JWT verified once,
/// by this command or any replica, is refused the next time. Without it, each run of the
/// command remembers only its own.
async fn shared_replay_guard() -> Result<Option<std::sync::Arc<dyn ReplayGuard>>, String> {
    let env = dual_auth::config::EnvSource::new();
    if env.get("DUAL_AUTH_REDIS_URL").is_none() {
        return Ok(None);
    }
    #[cfg(feature = "redis")]
    {
        use dual_auth::redis::{RedisReplayGuard, RedisSettings};
        let settings = RedisSettings::load(&dual_auth::config::ConfigReader::new(&env)).await.map_err(error_chain)?;
        let connection = settings.connect().await.map_err(error_chain)?;
        Ok(Some(std::sync::Arc::new(RedisReplayGuard::new(connection, &settings))))
    }
    #[cfg(not(feature = "redis"))]
    {
        Err("DUAL_AUTH_REDIS_URL is set, but this build of dual-auth has no Redis: cargo install --path crates/dual-auth-cli \
             (Redis is a default feature), or add --features redis to a --no-default-features build"
            .into())
    }
}

async fn verify_token(args: TokenVerifyArgs) -> Result<(), String> {
    use dual_auth::verify::{ActAssertionPolicy, IssuerPolicy, Layout, Verifier};
    let token = token_or_stdin(args.token)?;
    let mut policy = IssuerPolicy::new(&args.issuer, &args.audience).leeway(Duration::from_secs(args.leeway));
    if let Some(url) = &args.jwks_url {
        policy = policy.jwks_url(url);
    }
    policy = policy.layout(match args.layout {
        LayoutArg::DualAuth => Layout::DualAuth,
        LayoutArg::Rfc8693 => Layout::Rfc8693,
        LayoutArg::Delegated => Layout::Delegated,
    });
    if let Some(typ) = &args.required_type {
        policy = policy.require_type(typ);
    }
    policy = policy.require_scopes(args.required_scopes.iter().cloned());
    if let Some(path) = &args.app_public_key {
        let key = VerifyingKey::from_pem_file(path).map_err(|e| format!("--app-public-key: {}", ErrorChain(&e)))?;
        let audience = args.assertion_audience.as_deref().unwrap_or(&args.audience);
        let mut assertion = ActAssertionPolicy::with_key(key, audience).leeway(Duration::from_secs(args.leeway));
        if let Some(app_id) = &args.app_id {
            assertion = assertion.app_id(app_id);
        }
        policy = policy.act_assertion(assertion);
    }
    // The one reader of DUAL_AUTH_CA_BUNDLE, as every other command uses it.
    let env = dual_auth::config::EnvSource::new();
    let http = dual_auth::config::ConfigReader::new(&env).http_settings().await.map_err(error_chain)?;
    let verifier = Verifier::builder().issuer(policy).http(http).build().map_err(error_chain)?;
    let subject = verifier.verify(&token, args.act_assertion.as_deref().map(str::trim)).await.map_err(error_chain)?;
    print_untrusted(&serde_json::to_string_pretty(&subject).map_err(error_chain)?);
    Ok(())
}

fn inspect(token: Option<String>) -> Result<(), String> {
    let token = token_or_stdin(token)?;
    let jwt = UnverifiedJwt::parse(&token).map_err(error_chain)?;
    eprintln!("warning: NOT verified: this shows what the token claims, not that any of it is true");
    let out = json!({"header": jwt.header(), "claims": jwt.claims()});
    print_untrusted(&serde_json::to_string_pretty(&out).map_err(error_chain)?);
    Ok(())
}

/// Prints text that came from elsewhere (an API, a token, an identity provider) with every
/// control and bidirectional-override character escaped (`\uXXXX`, which JSON reads back):
/// serde_json leaves DEL, C1 controls and overrides as they are, and terminals obey some.
#[allow(clippy::print_stdout)]
fn print_untrusted(text: &str) {
    println!("{}", dual_auth::escape_untrusted(text, true));
}

fn token_or_stdin(token: Option<String>) -> Result<String, String> {
    if let Some(token) = token {
        return Ok(token.trim().to_owned());
    }
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err("no token given: pass it as an argument or on stdin".into());
    }
    let mut buffer = String::new();
    // Bounded: a token is a few kilobytes; refuse to buffer an endless stream.
    stdin.by_ref().take(1024 * 1024).read_to_string(&mut buffer).map_err(|e| format!("cannot read stdin: {e}"))?;
    let token = buffer.trim();
    if token.is_empty() {
        return Err("no token given: pass it as an argument or on stdin".into());
    }
    Ok(token.to_owned())
}
