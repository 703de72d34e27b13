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
use dual_auth::prelude::*;
use dual_auth::{SigningAlgorithm, UnverifiedJwt, generate_key_pair};
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

/// The human: either a whole act object, or its fields.
#[derive(Args, Debug)]
#[group(required = true, multiple = true)]
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
            // One line, whatever the error's own formatting.
            eprintln!("dual-auth: {}", message.replace('\n', " "));
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
    }
}

fn keygen(args: &KeygenArgs) -> Result<(), String> {
    let pair = generate_key_pair(args.alg.into(), args.bits).map_err(|e| e.to_string())?;
    let (private, public) = pair.write_to_dir(&args.out_dir).map_err(|e| e.to_string())?;
    println!("{}", private.display());
    println!("{}", public.display());
    Ok(())
}

fn sign(args: &SignArgs) -> Result<(), String> {
    let act = args.act.to_act()?;
    let mut key = SigningKey::from_pem_file(&args.private_key).map_err(|e| e.to_string())?;
    if let Some(kid) = &args.key_id {
        key = key.with_key_id(kid);
    }
    let mut signer = ActJwtSigner::new(key);
    if let Some(issuer) = &args.issuer {
        signer = signer.with_issuer(issuer);
    }
    let jwt = signer.sign(&act, &args.audience, Duration::from_secs(args.ttl)).map_err(|e| e.to_string())?;
    println!("{}", jwt.expose_secret());
    Ok(())
}

fn verify(args: VerifyArgs) -> Result<(), String> {
    let token = token_or_stdin(args.token)?;
    let key = VerifyingKey::from_pem_file(&args.public_key).map_err(|e| e.to_string())?;
    let mut builder = ActJwtVerifier::builder(key, &args.audience)
        .leeway(Duration::from_secs(args.leeway))
        .max_lifetime(Duration::from_secs(args.max_lifetime));
    if let Some(issuer) = &args.issuer {
        builder = builder.issuer(issuer);
    }
    if args.any_issuer {
        builder = builder.any_issuer();
    }
    let verifier = builder.build().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread().build().map_err(|e| format!("cannot start the runtime: {e}"))?;
    let verified = runtime.block_on(verifier.verify(&token)).map_err(|e| e.to_string())?;
    println!("{}", serde_json::to_string(verified.act()).map_err(|e| e.to_string())?);
    Ok(())
}

fn inspect(token: Option<String>) -> Result<(), String> {
    let token = token_or_stdin(token)?;
    let jwt = UnverifiedJwt::parse(&token).map_err(|e| e.to_string())?;
    eprintln!("warning: NOT verified: this shows what the token claims, not that any of it is true");
    let out = json!({"header": jwt.header(), "claims": jwt.claims()});
    println!("{}", serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?);
    Ok(())
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
