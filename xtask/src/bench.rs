//! `cargo xtask bench`: the same workloads with the Python package and with ours, on the
//! same machine in the same run, alternating, against the same development identity
//! provider; the RSA floor from `openssl speed`; the API side against its peers
//! ([`crate::bench_api`]); the build footprint. Writes `docs/benchmarks.md` and its chart
//! `docs/benchmarks-api.svg`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::Result;

const AUDIENCE: &str = "https://agent.dual-auth.example/invoke";
const ROUNDS: usize = 2;

pub(crate) struct Kill(pub(crate) Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A workload: its label and its arguments on each side (`None`: the Python package has no
/// equivalent, for example our token cache).
struct Workload {
    label: &'static str,
    rust: Vec<String>,
    python: Option<Vec<String>>,
}

/// A number field of a flat JSON object line, compact (`"a":1`) or spaced (`"a": 1`).
fn json_field(line: &str, field: &str) -> Option<f64> {
    let key = format!("\"{field}\":");
    let rest = &line[line.find(&key)? + key.len()..];
    rest[..rest.find([',', '}'])?].trim().parse().ok()
}

pub(crate) fn measure(command: &mut Command) -> Result<String> {
    let out = command.output().map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{command:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

pub(crate) fn run(root: &Path, python: &Path, skip_footprint: bool) -> Result {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::run(Command::new(&cargo).current_dir(root).args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "dual-auth-cli",
        "-p",
        "dual-auth-examples",
        "--bin",
        "dual-auth",
        "--bin",
        "bench_workload",
    ]))?;
    let release = root.join("target/release");
    let work = root.join("target/bench");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;

    // The development provider, as a separate process both sides talk to.
    let mut idp = Command::new(release.join("dual-auth"))
        .args(["dev-idp", "--port", "0", "--out-dir"])
        .arg(work.join("idp"))
        .env("DUAL_AUTH_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the development provider: {e}"))?;
    let stdout = idp.take_stdout()?;
    let idp = Kill(idp);
    let mut env = BTreeMap::new();
    for line in BufReader::new(stdout).lines().map_while(std::result::Result::ok) {
        if let Some((name, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            env.insert(name.to_owned(), value.trim_matches('\'').to_owned());
        }
        if line.starts_with("export APP_PRIVATE_KEY_PATH") {
            break;
        }
    }
    let private = env.get("APP_PRIVATE_KEY_PATH").cloned().ok_or("the provider printed no APP_PRIVATE_KEY_PATH")?;
    let public = env.get("APP_PUBLIC_KEY_PATH").cloned().ok_or("the provider printed no APP_PUBLIC_KEY_PATH")?;
    let ca = env.get("DUAL_AUTH_CA_BUNDLE").cloned().ok_or("the provider printed no CA")?;

    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let workloads = vec![
        Workload {
            label: "act JWT sign, RS256 (10,000)",
            rust: s(&["sign", "10000", &private, AUDIENCE]),
            python: Some(s(&["sign", "10000", &private, AUDIENCE])),
        },
        Workload {
            label: "act JWT verify, RS256 (10,000)",
            rust: s(&["verify", "10000", &private, &public, AUDIENCE]),
            python: Some(s(&["verify", "10000", &private, &public, AUDIENCE])),
        },
        Workload {
            label: "in-session flow, concurrency 1, cache off (2,000)",
            rust: s(&["flows", "2000", "1", "off"]),
            python: Some(s(&["flows", "2000", "1"])),
        },
        Workload { label: "in-session flow, concurrency 1, cache on (2,000)", rust: s(&["flows", "2000", "1", "on"]), python: None },
        Workload {
            label: "in-session flow, concurrency 32, cache off (2,000)",
            rust: s(&["flows", "2000", "32", "off"]),
            python: Some(s(&["flows", "2000", "32"])),
        },
        Workload { label: "in-session flow, concurrency 32, cache on (2,000)", rust: s(&["flows", "2000", "32", "on"]), python: None },
    ];
    let script = root.join("examples/bench/python_workload.py");
    let mut rows = String::new();
    for workload in &workloads {
        let (mut rust, mut py, mut rust_rss, mut py_rss, mut rust_p90, mut py_p90) = (vec![], vec![], vec![], vec![], vec![], vec![]);
        for round in 0..ROUNDS {
            eprintln!("xtask bench: {} (round {})", workload.label, round + 1);
            // Alternating, so that drift in the machine hits both sides alike.
            let line = measure(Command::new(release.join("bench_workload")).args(&workload.rust).envs(&env).env("DUAL_AUTH_LOG", "error"))?;
            rust.push(json_field(&line, "median_us").unwrap_or(0.0));
            rust_p90.push(json_field(&line, "p90_us").unwrap_or(0.0));
            rust_rss.push(json_field(&line, "peak_rss_kb").unwrap_or(0.0));
            if let Some(args) = &workload.python {
                let line = measure(Command::new(python).arg(&script).args(args).envs(&env).env("REQUESTS_CA_BUNDLE", &ca))?;
                py.push(json_field(&line, "median_us").unwrap_or(0.0));
                py_p90.push(json_field(&line, "p90_us").unwrap_or(0.0));
                py_rss.push(json_field(&line, "peak_rss_kb").unwrap_or(0.0));
            }
        }
        let (r, r90, rr) = (median(&mut rust), median(&mut rust_p90), median(&mut rust_rss));
        if py.is_empty() {
            let _ = writeln!(rows, "| {} | {r:.1} | — | — | {r90:.1} | — | {:.0} | — |", workload.label, rr / 1024.0);
        } else {
            let (p, p90, pr) = (median(&mut py), median(&mut py_p90), median(&mut py_rss));
            let _ = writeln!(
                rows,
                "| {} | {r:.1} | {p:.1} | {:.1}× | {r90:.1} | {p90:.1} | {:.0} | {:.0} |",
                workload.label,
                p / r.max(0.001),
                rr / 1024.0,
                pr / 1024.0
            );
        }
    }
    drop(idp);

    let floor = measure(Command::new("openssl").args(["speed", "-seconds", "2", "rsa2048"])).unwrap_or_default();
    let floor_line =
        floor.lines().rev().find(|l| l.trim_start().starts_with("rsa 2048")).unwrap_or("openssl speed unavailable").trim().to_owned();

    let api = crate::bench_api::run(root, &cargo)?;
    std::fs::write(root.join("docs/benchmarks-api.svg"), &api.svg).map_err(|e| format!("cannot write docs/benchmarks-api.svg: {e}"))?;

    let footprint = if skip_footprint { "Not measured in this run (`--no-footprint`).\n".to_owned() } else { footprint(root, &cargo)? };

    let machine = machine();
    let doc = format!(
        "# Benchmarks\n\nWritten by `cargo xtask bench` (not by hand) on {machine}.\n\n\
         Each workload ran {ROUNDS} times per side, Rust and the Python package `dual-auth==1.0.1` alternating, in the same run, \
         against the same development identity provider (`dual-auth dev-idp`, HTTPS on loopback) and its API. Medians of the \
         per-round medians; latencies in microseconds per operation; ratio = Python / Rust (above 1: Rust is faster). \
         A flow is: the act from the session, a token request (Keycloak dialect), an API call. The Python package has no \
         token cache. Peak memory is each process's peak resident set (MiB).\n\n\
         | workload | Rust median µs | Python median µs | ratio | Rust p90 µs | Python p90 µs | Rust peak MiB | Python peak MiB |\n\
         |---|---|---|---|---|---|---|---|\n{rows}\n\
         The floor, raw RSA-2048 on this machine in the same run (`openssl speed -seconds 2 rsa2048`; sign/s and verify/s):\n\n\
         ```\n{floor_line}\n```\n\n{}\n## Build footprint\n\n{footprint}",
        api.markdown
    );
    std::fs::write(root.join("docs/benchmarks.md"), doc).map_err(|e| format!("cannot write docs/benchmarks.md: {e}"))?;
    eprintln!("xtask bench: wrote docs/benchmarks.md");
    Ok(())
}

trait TakeStdout {
    fn take_stdout(&mut self) -> Result<std::process::ChildStdout>;
}

impl TakeStdout for Child {
    fn take_stdout(&mut self) -> Result<std::process::ChildStdout> {
        self.stdout.take().ok_or_else(|| "no stdout".to_owned())
    }
}

fn footprint(root: &Path, cargo: &str) -> Result<String> {
    let mut table = String::from("| build of `dual-auth` | crates compiled | build time from scratch (s) |\n|---|---|---|\n");
    for (label, features) in [("default-features = false, features = [\"okta\"] (env only)", "okta"), ("features = [\"full\"]", "full")] {
        let tree = measure(Command::new(cargo).current_dir(root).args([
            "tree",
            "-p",
            "dual-auth",
            "--no-default-features",
            "--features",
            features,
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ]))?;
        let mut crates: Vec<&str> = tree.lines().map(|l| l.split(" (").next().unwrap_or(l)).collect();
        crates.sort_unstable();
        crates.dedup();
        let target = root.join(format!("target/bench/footprint-{features}"));
        let _ = std::fs::remove_dir_all(&target);
        eprintln!("xtask bench: building {label} from scratch");
        let started = Instant::now();
        crate::run(Command::new(cargo).current_dir(root).env("CARGO_TARGET_DIR", &target).args([
            "build",
            "--quiet",
            "-p",
            "dual-auth",
            "--no-default-features",
            "--features",
            features,
        ]))?;
        let _ = writeln!(table, "| {label} | {} | {:.0} |", crates.len(), started.elapsed().as_secs_f64());
    }
    Ok(table)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_owned()))
        .unwrap_or_else(|| "an unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok()))
        .map_or_else(String::new, |kb| format!(", {} GiB", kb / 1024 / 1024));
    let rustc = measure(Command::new("rustc").arg("--version")).unwrap_or_default();
    let python = measure(Command::new("python3").arg("--version")).unwrap_or_default();
    format!("{cpu}, {cores} cores{memory}; {rustc}; {python}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields_are_read_from_both_sides_output() {
        assert_eq!(super::json_field(r#"{"op":"sign","median_us":310.8,"p90_us":1.5}"#, "median_us"), Some(310.8));
        assert_eq!(super::json_field(r#"{"op": "sign", "median_us": 3389.3, "peak_rss_kb": 40528}"#, "peak_rss_kb"), Some(40528.0));
        assert_eq!(super::json_field(r#"{"op":"x"}"#, "median_us"), None);
    }
}
