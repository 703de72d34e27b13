//! `dual-auth-keycloak [--port P]`: what `cargo xtask keycloak` runs after installing
//! Keycloak. Starts it with the project's realm, prints the variables that point
//! `dual-auth` at it, and runs until Ctrl-C (which the server's watchdog also gets).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use dual_auth_test_support::keycloak::Keycloak;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = match args.as_slice() {
        [] => None,
        [flag, port] if flag == "--port" => match port.parse() {
            Ok(port) => Some(port),
            Err(_) => {
                eprintln!("dual-auth-keycloak: --port {port:?} is not a port number");
                return ExitCode::FAILURE;
            }
        },
        _ => {
            eprintln!("usage: cargo xtask keycloak [--port P]");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("dual-auth-keycloak: starting Keycloak (tens of seconds on two cores)");
    match Keycloak::start_on(port) {
        Ok(server) => {
            print!("{}", server.exports());
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        Err(e) => {
            eprintln!("dual-auth-keycloak: {e}");
            ExitCode::FAILURE
        }
    }
}
