//! Installs the pinned Keycloak under `target/it/keycloak/dist`, for the tests and for
//! `cargo xtask keycloak` (both start it through `dual-auth-test-support`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Result, root, run};

/// The newest 26.x release Maven Central serves here (26.8.x is not served): it has the
/// supported JWT authorization grant (26.6+) and standard token exchange.
pub(crate) const VERSION: &str = "26.7.3";
/// SHA-256 of `org.keycloak:keycloak-quarkus-dist:26.7.3:tar.gz`.
const DIST_SHA256: &str = "77657f30b7e90d70f727712ce1c967f430fd6a5e9f458d32d8c6df0635345f47";
/// The Maven plugin that fetches it (pinned, like everything the suite installs).
const MAVEN_DEPENDENCY_PLUGIN: &str = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy";
/// Baked in by `kc.sh build` and checked by `start --optimized`: an embedded database and
/// local caches (no cluster ports).
const BUILD_OPTIONS: [&str; 2] = ["--db=dev-file", "--cache=local"];
/// Read by `dual-auth-test-support` (`keycloak::INSTALL_STAMP`).
const STAMP: &str = ".dual-auth-installed";

fn keycloak_root() -> PathBuf {
    root().join("target/it/keycloak")
}

fn stamp_text(java_home: Option<&Path>) -> String {
    format!(
        "version={VERSION}\nsha256={DIST_SHA256}\nbuild={}\njava_home={}\n",
        BUILD_OPTIONS.join(" "),
        java_home.map(|p| p.display().to_string()).unwrap_or_default()
    )
}

/// Fetches, checks, unpacks and builds Keycloak unless the stamp says it is done: a second
/// run downloads nothing.
pub(crate) fn install() -> Result {
    let dist = keycloak_root().join("dist");
    let java_home = java_home();
    let wanted = stamp_text(java_home.as_deref());
    if fs::read_to_string(dist.join(STAMP)).is_ok_and(|s| s == wanted) {
        return Ok(());
    }
    eprintln!("xtask: installing Keycloak {VERSION} under {}", dist.display());
    let download = keycloak_root().join("download");
    fs::create_dir_all(&download).map_err(|e| format!("cannot create {}: {e}", download.display()))?;
    let archive = download.join(format!("keycloak-quarkus-dist-{VERSION}.tar.gz"));
    if !archive.exists() || sha256(&archive)? != DIST_SHA256 {
        let _ = fs::remove_file(&archive);
        let repo = root().join("target/it/m2");
        run(Command::new("mvn")
            .args(["-B", "-q"])
            .arg(format!("-Dmaven.repo.local={}", repo.display()))
            .arg(MAVEN_DEPENDENCY_PLUGIN)
            .arg(format!("-Dartifact=org.keycloak:keycloak-quarkus-dist:{VERSION}:tar.gz"))
            .arg(format!("-DoutputDirectory={}", download.display())))?;
        // The local repository keeps a second copy of the 176 MB artifact: drop it.
        let _ = fs::remove_dir_all(repo.join("org/keycloak/keycloak-quarkus-dist"));
    }
    let digest = sha256(&archive)?;
    if digest != DIST_SHA256 {
        let _ = fs::remove_file(&archive);
        return Err(format!("{} has SHA-256 {digest}, expected {DIST_SHA256}: removed it; run again", archive.display()));
    }
    // Unpacked beside its place, then moved there: a broken run leaves no half tree.
    let unpack = keycloak_root().join("unpack");
    let _ = fs::remove_dir_all(&unpack);
    let _ = fs::remove_dir_all(&dist);
    fs::create_dir_all(&unpack).map_err(|e| format!("cannot create {}: {e}", unpack.display()))?;
    run(Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(&unpack))?;
    fs::rename(unpack.join(format!("keycloak-{VERSION}")), &dist).map_err(|e| format!("cannot move the unpacked Keycloak: {e}"))?;
    let _ = fs::remove_dir_all(&unpack);
    eprintln!("xtask: building Keycloak once (kc.sh build {})", BUILD_OPTIONS.join(" "));
    let mut build = Command::new(dist.join("bin/kc.sh"));
    build.arg("build").args(BUILD_OPTIONS).stdout(Stdio::null());
    if let Some(home) = &java_home {
        build.env("JAVA_HOME", home);
    }
    run(&mut build)?;
    fs::write(dist.join(STAMP), wanted).map_err(|e| format!("cannot write the install stamp: {e}"))
}

/// `sha256sum`'s digest of `path`.
fn sha256(path: &Path) -> Result<String> {
    let out = Command::new("sha256sum").arg(path).output().map_err(|e| format!("cannot run sha256sum: {e}"))?;
    if !out.status.success() {
        return Err(format!("sha256sum {} failed: {}", path.display(), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_owned())
}

/// The JDK to run Keycloak on: `DUAL_AUTH_KEYCLOAK_JAVA_HOME`, else the newest of the JDKs
/// 25 and 21 under `/usr/lib/jvm` (Keycloak supports 17, 21 and 25 and advises the
/// newest), else `None`: the `java` on the PATH (17 on this project's machines).
fn java_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("DUAL_AUTH_KEYCLOAK_JAVA_HOME") {
        return Some(PathBuf::from(home));
    }
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/jvm")
        .ok()?
        .filter_map(std::result::Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join("bin/java").exists())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            let major = [25, 21].into_iter().find(|v| name.split(['-', '.']).any(|part| part == v.to_string()))?;
            Some((major, path))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, path)| path)
}

/// `cargo xtask keycloak [--port P]`: installs, then runs test support's
/// `dual-auth-keycloak`, which starts the server and prints the variables.
pub(crate) fn serve(args: &[String]) -> Result {
    install()?;
    run(crate::cargo().args(["run", "--quiet", "--locked", "-p", "dual-auth-test-support", "--bin", "dual-auth-keycloak", "--"]).args(args))
}
