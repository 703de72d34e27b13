//! The system tools the suite needs. Installed through apt when we may (root, apt-get
//! present), else named all at once, each with the command that installs it.

use std::process::{Command, Stdio};

use crate::{Result, run};

/// A tool the suite needs from the system, how to tell it is there, and its Debian
/// packages.
struct Tool {
    what: &'static str,
    present: fn() -> bool,
    packages: &'static [&'static str],
    /// Needed to build the workspace at all (the demo needs these, and only these).
    to_build: bool,
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

pub(crate) fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

const TOOLS: [Tool; 10] = [
    Tool { what: "a C compiler (cc), for crates with C parts", present: || on_path("cc"), packages: &["build-essential"], to_build: true },
    Tool {
        what: "OpenSSL headers and pkg-config, for the openssl crate",
        present: || succeeds("pkg-config", &["--exists", "openssl"]),
        packages: &["pkg-config", "libssl-dev"],
        to_build: true,
    },
    Tool { what: "the openssl command", present: || on_path("openssl"), packages: &["openssl"], to_build: false },
    Tool {
        what: "Python 3 with venv, for the reference package and the store servers",
        present: || succeeds("python3", &["-c", "import venv, ensurepip"]),
        packages: &["python3", "python3-venv"],
        to_build: false,
    },
    Tool {
        what: "Node.js and npm, for oidc-provider",
        present: || on_path("node") && on_path("npm"),
        packages: &["nodejs", "npm"],
        to_build: false,
    },
    Tool {
        what: "redis-server, for the replicas' tests",
        present: || on_path("redis-server"),
        packages: &["redis-server"],
        to_build: false,
    },
    Tool { what: "Maven, to fetch Keycloak from Maven Central", present: || on_path("mvn"), packages: &["maven"], to_build: false },
    Tool {
        what: "a JDK (17, 21 or 25), to run Keycloak",
        present: || on_path("java"),
        packages: &["default-jdk-headless"],
        to_build: false,
    },
    Tool {
        what: "Chromium and ChromeDriver, for the browser tests (Debian's, driven over WebDriver)",
        present: || on_path("chromium") && on_path("chromedriver"),
        packages: &["chromium", "chromium-driver"],
        to_build: false,
    },
    Tool {
        what: "tar, sha256sum and setsid",
        present: || on_path("tar") && on_path("sha256sum") && on_path("setsid"),
        packages: &["tar", "coreutils", "util-linux"],
        to_build: false,
    },
];

/// Installs what is missing when this user may (root with apt-get); otherwise fails at once
/// with one line per missing tool and the command that installs it.
pub(crate) fn ensure() -> Result {
    ensure_tools(|_| true)
}

/// As [`ensure`], for only what building the workspace needs (the demo).
pub(crate) fn ensure_to_build() -> Result {
    ensure_tools(|tool| tool.to_build)
}

fn ensure_tools(needed: fn(&Tool) -> bool) -> Result {
    let missing: Vec<&Tool> = TOOLS.iter().filter(|tool| needed(tool) && !(tool.present)()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().flat_map(|tool| tool.packages.iter().copied()).collect();
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    if is_root && on_path("apt-get") {
        eprintln!("xtask: installing system packages: {}", packages.join(" "));
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&packages)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        let still: Vec<&str> = missing.iter().filter(|tool| !(tool.present)()).map(|tool| tool.what).collect();
        return if still.is_empty() { Ok(()) } else { Err(format!("still missing after apt-get install: {}", still.join("; "))) };
    }
    Err(missing_report(&missing))
}

/// One line per missing tool, each with the command that installs it.
fn missing_report(missing: &[&Tool]) -> String {
    let lines: Vec<String> =
        missing.iter().map(|tool| format!("  missing {}: sudo apt-get install {}", tool.what, tool.packages.join(" "))).collect();
    format!("the test suite needs these tools first (or run as root, and xtask installs them):\n{}", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_missing_tool_is_named_with_its_install_command() {
        let missing: Vec<&Tool> = TOOLS.iter().filter(|tool| ["redis-server", "Maven"].iter().any(|w| tool.what.starts_with(w))).collect();
        assert_eq!(
            missing_report(&missing),
            "the test suite needs these tools first (or run as root, and xtask installs them):\n  \
             missing redis-server, for the replicas' tests: sudo apt-get install redis-server\n  \
             missing Maven, to fetch Keycloak from Maven Central: sudo apt-get install maven"
        );
    }
}
