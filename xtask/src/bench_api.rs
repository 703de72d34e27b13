//! The API side against its peers: one small axum endpoint (`examples/bench/api-peers`)
//! served bare, behind `DualAuthLayer` and behind axum-jwt-auth, each with RS256 and ES256
//! tokens, loaded by wrk (Debian's package) at several concurrencies in the same run. Gives
//! the table, the per-request verification cost against the raw verify floor, and the
//! chart (an SVG drawn here, from the same numbers).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Result;

/// The concurrencies wrk loads each server at.
const CONCURRENCIES: [u32; 4] = [1, 8, 32, 128];
/// Seconds per wrk run.
const SECONDS: u32 = 5;
/// The servers, as the table names them, with the mode `api_peers serve` takes.
const SERVERS: [(&str, &str); 3] =
    [("bare (no authentication)", "bare"), ("dual-auth-verify", "dual-auth"), ("axum-jwt-auth 0.7.0", "axum-jwt-auth")];
const ALGORITHMS: [&str; 2] = ["rs256", "es256"];

/// One wrk run.
#[derive(Debug, Clone, Copy)]
struct Load {
    concurrency: u32,
    requests_per_second: f64,
    p50_us: f64,
    p99_us: f64,
}

/// One server (mode and algorithm) under every concurrency.
struct Row {
    server: &'static str,
    mode: &'static str,
    algorithm: &'static str,
    loads: Vec<Load>,
    peak_mib: f64,
}

/// What the API section of `docs/benchmarks.md` says, and the chart.
pub(crate) struct ApiReport {
    pub(crate) markdown: String,
    pub(crate) svg: String,
}

/// wrk's `12.34us` / `1.20ms` / `1.00s` in microseconds.
fn micros(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e6)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

/// Reads wrk's `--latency` report; refuses a run with errors or non-2xx answers (a token
/// the server refused measures nothing).
fn parse_wrk(concurrency: u32, out: &str) -> Result<Load> {
    if let Some(line) = out.lines().find(|l| l.contains("Non-2xx or 3xx responses") || l.trim_start().starts_with("Socket errors")) {
        return Err(format!("wrk reported failures: {}\n{out}", line.trim()));
    }
    let field = |prefix: &str| out.lines().map(str::trim).find_map(|l| l.strip_prefix(prefix)).map(str::trim);
    let requests_per_second = field("Requests/sec:").and_then(|v| v.parse().ok()).ok_or_else(|| format!("no Requests/sec in:\n{out}"))?;
    let p50_us = field("50%").and_then(micros).ok_or_else(|| format!("no 50% latency in:\n{out}"))?;
    let p99_us = field("99%").and_then(micros).ok_or_else(|| format!("no 99% latency in:\n{out}"))?;
    Ok(Load { concurrency, requests_per_second, p50_us, p99_us })
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    Ok(listener.local_addr().map_err(|e| format!("bind: {e}"))?.port())
}

fn peak_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0.0);
    kib / 1024.0
}

/// wrk, from Debian's packages: installed as root with apt-get, else named.
fn ensure_wrk() -> Result {
    if crate::prerequisites::on_path("wrk") {
        return Ok(());
    }
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    if !is_root {
        return Err("the API benchmark needs wrk: sudo apt-get install wrk".into());
    }
    eprintln!("xtask bench: installing wrk");
    crate::run(
        Command::new("apt-get").args(["install", "-y", "-qq", "--no-install-recommends", "wrk"]).env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn keys(dir: &Path) -> Result {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let pairs: [(&str, &[&str]); 2] = [
        ("rs256", &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        ("es256", &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
    ];
    for (name, options) in pairs {
        let private = dir.join(format!("{name}-private.pem"));
        crate::run(Command::new("openssl").arg("genpkey").args(options).arg("-out").arg(&private).stderr(Stdio::null()))?;
        crate::run(
            Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&private).arg("-out").arg(dir.join(format!("{name}-public.pem"))),
        )?;
    }
    Ok(())
}

/// The raw verify floor of `algorithm` on this machine: `openssl speed`'s verify/s, in µs.
fn floor_us(algorithm: &str) -> Option<f64> {
    let (name, prefix) = if algorithm == "rs256" { ("rsa2048", "rsa 2048") } else { ("ecdsap256", "256 bits ecdsa") };
    let out = Command::new("openssl").args(["speed", "-seconds", "2", name]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.trim_start().starts_with(prefix))?;
    // `rsa 2048 bits 0.000250s 0.000016s 4005.5 61505.5`: the last number is verify/s.
    let per_second: f64 = line.split_whitespace().last()?.parse().ok()?;
    (per_second > 0.0).then(|| 1e6 / per_second)
}

fn run_server(
    binary: &Path,
    mode: &'static str,
    algorithm: &'static str,
    key_dir: &Path,
    token: &str,
    server: &'static str,
) -> Result<Row> {
    let port = free_port()?;
    let mut child = Command::new(binary)
        .args(["serve", mode, algorithm])
        .arg(key_dir)
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut child = crate::bench::Kill(child);
    let mut ready = String::new();
    BufReader::new(stdout).read_line(&mut ready).map_err(|e| e.to_string())?;
    if !ready.contains("listening") {
        return Err(format!("the {mode} server did not start: {ready}"));
    }
    let url = format!("http://127.0.0.1:{port}/report");
    let mut loads = Vec::new();
    for concurrency in CONCURRENCIES {
        eprintln!("xtask bench: {server}, {algorithm}, concurrency {concurrency}");
        let threads = concurrency.min(2);
        let out = Command::new("wrk")
            .args(["--latency", "-t", &threads.to_string(), "-c", &concurrency.to_string(), "-d", &format!("{SECONDS}s")])
            .args(["-H", &format!("Authorization: Bearer {token}"), &url])
            .output()
            .map_err(|e| format!("cannot run wrk: {e}"))?;
        loads.push(parse_wrk(concurrency, &String::from_utf8_lossy(&out.stdout))?);
    }
    let peak = peak_mib(child.0.id());
    let _ = child.0.kill();
    Ok(Row { server, mode, algorithm, loads, peak_mib: peak })
}

/// Builds the server, makes keys and tokens, loads each server, and writes the report.
pub(crate) fn run(root: &Path, cargo: &str) -> Result<ApiReport> {
    ensure_wrk()?;
    let target = root.join("target/bench/api-peers");
    crate::run(
        Command::new(cargo)
            .current_dir(root)
            .args(["build", "--release", "--locked", "--quiet", "--manifest-path", "examples/bench/api-peers/Cargo.toml", "--target-dir"])
            .arg(&target),
    )?;
    let binary: PathBuf = target.join("release/dual-auth-api-peers");
    let key_dir = root.join("target/bench/api-keys");
    keys(&key_dir)?;
    let mut rows = Vec::new();
    for algorithm in ALGORITHMS {
        let token = crate::bench::measure(Command::new(&binary).args(["token", algorithm]).arg(&key_dir))?;
        for (server, mode) in SERVERS {
            // The bare server checks nothing: once is enough, under the first algorithm.
            if mode == "bare" && algorithm != ALGORITHMS[0] {
                continue;
            }
            rows.push(run_server(&binary, mode, algorithm, &key_dir, &token, server)?);
        }
    }
    let floors: Vec<(&str, Option<f64>)> = ALGORITHMS.iter().map(|a| (*a, floor_us(a))).collect();
    Ok(ApiReport { markdown: markdown(&rows, &floors), svg: chart(&rows) })
}

/// `cargo xtask bench --api-only`: this part alone, printed; the chart under `target/bench`
/// (`docs/` is written only by the whole run).
pub(crate) fn run_alone(root: &Path) -> Result {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let report = run(root, &cargo)?;
    let chart = root.join("target/bench/benchmarks-api.svg");
    std::fs::write(&chart, &report.svg).map_err(|e| format!("cannot write {}: {e}", chart.display()))?;
    println!("{}", report.markdown);
    eprintln!("xtask bench: the chart is {}", chart.display());
    Ok(())
}

fn label(row: &Row) -> String {
    if row.mode == "bare" { row.server.to_owned() } else { format!("{}, {}", row.server, row.algorithm.to_uppercase()) }
}

fn markdown(rows: &[Row], floors: &[(&str, Option<f64>)]) -> String {
    let mut table = String::from(
        "| server | requests/s at 1 · 8 · 32 · 128 | p50 µs at 1 · 8 · 32 · 128 | p99 µs at 1 · 8 · 32 · 128 | peak MiB |\n|---|---|---|---|---|\n",
    );
    let join = |row: &Row, pick: fn(&Load) -> f64, digits: usize| {
        row.loads.iter().map(|l| format!("{:.digits$}", pick(l))).collect::<Vec<_>>().join(" · ")
    };
    for row in rows {
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {:.1} |",
            label(row),
            join(row, |l| l.requests_per_second, 0),
            join(row, |l| l.p50_us, 0),
            join(row, |l| l.p99_us, 0),
            row.peak_mib
        );
    }
    // The verification cost per request: the service-time difference at concurrency 1.
    let service_us = |row: &Row| row.loads.first().map_or(0.0, |l| 1e6 / l.requests_per_second.max(1.0));
    let bare = rows.iter().find(|r| r.mode == "bare").map_or(0.0, service_us);
    let mut cost = String::from(
        "| algorithm | server | verification cost per request µs | raw verify floor µs | cost / floor |\n|---|---|---|---|---|\n",
    );
    for row in rows.iter().filter(|r| r.mode != "bare") {
        let floor = floors.iter().find(|(a, _)| *a == row.algorithm).and_then(|(_, f)| *f);
        let extra = service_us(row) - bare;
        let (floor_text, ratio) = match floor {
            Some(f) => (format!("{f:.1}"), format!("{:.2}×", extra / f)),
            None => ("—".into(), "—".into()),
        };
        let _ = writeln!(cost, "| {} | {} | {extra:.1} | {floor_text} | {ratio} |", row.algorithm.to_uppercase(), row.server);
    }
    format!(
        "## The API side against its peers\n\n\
         One small axum endpoint (`examples/bench/api-peers`, release build) served three ways in this run: bare, behind \
         `DualAuthLayer` (dual-auth-verify, delegated layout, a static key) and behind axum-jwt-auth 0.7.0 (jsonwebtoken 10 \
         with its RustCrypto backend, as that crate builds it), each checking the same RS256 or ES256 token with the same key \
         (signature, `iss`, `aud`, `exp`). Load: wrk 4.1 (Debian), {SECONDS} s per run, HTTP/1.1 keep-alive on loopback, at \
         concurrency 1, 8, 32 and 128, on the same two cores as the server. Peak memory is the server process's peak \
         resident set after all its runs.\n\n{table}\n\
         The verification cost per request is the mean service time at concurrency 1 (1 / requests per second) minus the \
         bare server's; the floor is one raw verification of that algorithm on this machine in the same run (`openssl speed \
         -seconds 2 rsa2048` / `ecdsap256`, verify/s).\n\n{cost}\n\
         ![p50 latency against concurrency](benchmarks-api.svg)\n"
    )
}

/// Latency (p50) against concurrency, each server a line: an SVG drawn from the rows.
fn chart(rows: &[Row]) -> String {
    let (width, height, left, right, top, bottom) = (760.0_f64, 420.0_f64, 70.0_f64, 230.0_f64, 40.0_f64, 50.0_f64);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let max_us = rows.iter().flat_map(|r| r.loads.iter().map(|l| l.p50_us)).fold(1.0_f64, f64::max);
    // Log scales both ways: concurrency 1 to 128, latency from 10 µs up.
    let (x_min, x_max) = (1.0_f64.ln(), f64::from(CONCURRENCIES[CONCURRENCIES.len() - 1]).ln());
    let (y_min, y_max) = (10.0_f64.log10(), (max_us * 1.5).log10().max(2.0));
    let x = |c: f64| left + (c.ln() - x_min) / (x_max - x_min) * plot_w;
    let y = |us: f64| top + plot_h - (us.max(10.0).log10() - y_min) / (y_max - y_min) * plot_h;
    let colours = ["#57606a", "#0969da", "#cf222e", "#1a7f37", "#bf8700"];
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">p50 latency against concurrency (wrk, loopback)</text>",
        left + plot_w / 2.0
    );
    let mut decade = 10.0_f64;
    while decade.log10() <= y_max + 1e-9 {
        let yy = y(decade);
        let _ = write!(
            svg,
            "<line x1=\"{left}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#d0d7de\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{decade} µs</text>",
            left + plot_w,
            left - 6.0,
            yy + 4.0
        );
        decade *= 10.0;
    }
    for c in CONCURRENCIES {
        let xx = x(f64::from(c));
        let _ = write!(
            svg,
            "<line x1=\"{xx:.1}\" y1=\"{top}\" x2=\"{xx:.1}\" y2=\"{:.1}\" stroke=\"#eaeef2\"/><text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{c}</text>",
            top + plot_h,
            top + plot_h + 18.0
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">concurrent connections</text>\
         <rect x=\"{left}\" y=\"{top}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" stroke=\"#57606a\"/>",
        left + plot_w / 2.0,
        height - 10.0
    );
    for (i, row) in rows.iter().enumerate() {
        let colour = colours[i % colours.len()];
        let dash = if row.algorithm == "es256" && row.mode != "bare" { " stroke-dasharray=\"6 4\"" } else { "" };
        let points: Vec<String> = row.loads.iter().map(|l| format!("{:.1},{:.1}", x(f64::from(l.concurrency)), y(l.p50_us))).collect();
        let _ = write!(svg, "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/>", points.join(" "));
        for l in &row.loads {
            let _ = write!(svg, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>", x(f64::from(l.concurrency)), y(l.p50_us));
        }
        let ly = top + 16.0 + 20.0 * i as f64;
        let lx = left + plot_w + 14.0;
        let _ = write!(
            svg,
            "<line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            lx + 24.0,
            lx + 30.0,
            ly + 4.0,
            label(row)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "Running 5s test @ http://127.0.0.1:1/report\n  2 threads and 8 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   101.21us   35.10us   2.10ms   90.00%\n  Latency Distribution\n     50%   95.00us\n     75%  110.00us\n     90%  130.00us\n     99%    1.20ms\n  390000 requests in 5.00s, 50.00MB read\nRequests/sec:  78000.12\nTransfer/sec:     10.00MB\n";

    #[test]
    fn wrk_reports_are_read_and_failures_refused() {
        let load = parse_wrk(8, WRK).unwrap();
        assert_eq!((load.concurrency, load.requests_per_second, load.p50_us, load.p99_us), (8, 78000.12, 95.0, 1200.0));
        let refused = format!("{WRK}  Non-2xx or 3xx responses: 390000\n");
        assert!(parse_wrk(8, &refused).unwrap_err().contains("Non-2xx"));
        assert_eq!(micros("1.00s"), Some(1e6));
        assert_eq!(micros("12"), None);
    }

    #[test]
    fn the_chart_has_a_line_and_a_legend_per_server() {
        let load = |c: u32, p50: f64| Load { concurrency: c, requests_per_second: 1000.0, p50_us: p50, p99_us: p50 * 2.0 };
        let rows = vec![
            Row {
                server: "bare (no authentication)",
                mode: "bare",
                algorithm: "rs256",
                loads: vec![load(1, 30.0), load(128, 900.0)],
                peak_mib: 5.0,
            },
            Row {
                server: "dual-auth-verify",
                mode: "dual-auth",
                algorithm: "es256",
                loads: vec![load(1, 80.0), load(128, 2000.0)],
                peak_mib: 7.0,
            },
        ];
        let svg = chart(&rows);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("dual-auth-verify, ES256") && svg.contains("stroke-dasharray"));
        let md = markdown(&rows, &[("es256", Some(40.0))]);
        // 1e6/1000 - 1e6/1000 = 0 µs over a 40 µs floor.
        assert!(md.contains("| ES256 | dual-auth-verify | 0.0 | 40.0 | 0.00× |"), "{md}");
    }
}
