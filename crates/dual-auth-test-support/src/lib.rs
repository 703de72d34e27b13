//! Shared helpers for dual-auth's tests. Not published.
//!
//! The reference Python package (`dual-auth==1.0.1`) lives in a venv that `cargo xtask`
//! creates under `target/it/venv`; tests that drive it are `#[ignore]`d so that a plain
//! `cargo test` needs nothing but Rust, and `cargo xtask test` runs them with the venv ready.

// Test helpers fail loudly: a panic here is a failed test with the reason in it.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used, clippy::print_stderr)]

pub mod agent;
pub mod browser;
pub mod fakes;
pub mod https;
pub mod jwt;
pub mod keycloak;
pub mod process;
pub mod servers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The environment variable that overrides where the reference venv's Python is.
pub const PYTHON_ENV: &str = "DUAL_AUTH_TEST_PYTHON";

/// The workspace root (the folder with the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.ancestors().nth(2).map(Path::to_path_buf).unwrap_or_else(|| manifest_dir.to_path_buf())
}

/// The Python interpreter of the reference venv, with `dual-auth==1.0.1` installed.
///
/// # Panics
/// With instructions, when the venv is missing: run `cargo xtask test` (or `cargo xtask setup`).
pub fn reference_python() -> PathBuf {
    let path = std::env::var_os(PYTHON_ENV).map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target/it/venv/bin/python"));
    assert!(
        path.exists(),
        "the reference Python venv is missing at {}: run `cargo xtask setup` (or `cargo xtask test`), or set {PYTHON_ENV}",
        path.display()
    );
    path
}

/// Runs a Python script with the reference interpreter and returns its output.
pub fn run_python(script: &Path, args: &[&str]) -> Output {
    Command::new(reference_python()).arg(script).args(args).output().unwrap_or_else(|e| panic!("cannot start the reference Python: {e}"))
}

/// A test key or certificate from `fixtures/keys` (made with the openssl CLI; see its README).
pub fn key_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys").join(name)
}
