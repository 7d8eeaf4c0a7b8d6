//! `privacy-router`: scan text for sensitive data (and, as the crate grows, check policies,
//! review audit logs and run the proxy: `proxy`).
//!
//! Exit status: 0 clean, 1 findings, 2 error. A closed output pipe (`| head`) exits 0.

mod audit_cmd;
mod policy_cmd;
mod proxy_cmd;
mod scan_cmd;

use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "privacy-router",
    version,
    about = "Decide whether an LLM prompt may leave the company"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find sensitive data in files, stdin, or JSON Lines records.
    Scan(scan_cmd::ScanArgs),
    /// Check, test and explain team policies; print their JSON Schema.
    Policy(policy_cmd::PolicyArgs),
    /// Review and verify audit logs: tail, query, stats, verify, fingerprint.
    Audit(audit_cmd::AuditArgs),
    /// Run the HTTP proxy for OpenAI and Anthropic clients.
    Proxy(proxy_cmd::ProxyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => scan_cmd::run(args),
        Command::Policy(args) => policy_cmd::run(args),
        Command::Audit(args) => audit_cmd::run(args),
        Command::Proxy(args) => proxy_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("privacy-router: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
