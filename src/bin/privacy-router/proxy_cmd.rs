//! `privacy-router proxy --config FILE`: the standalone proxy.
//!
//! Exit status: 0 after a clean shutdown (SIGINT, SIGTERM), 2 when the configuration or
//! the policies do not load or the address cannot be bound. The first line on stdout is
//! `listening on http://ADDR` (useful with `listen = "127.0.0.1:0"`); everything else
//! goes to stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::Args;
use privacy_router::policy::PolicyHandle;
use privacy_router::proxy::{ProxyConfig, Server};

#[derive(Args)]
pub(crate) struct ProxyArgs {
    /// The proxy's TOML configuration (see examples/proxy.toml).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

pub(crate) fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let config = ProxyConfig::load(&args.config).map_err(|e| anyhow!("{e}"))?;
    let policies = PolicyHandle::load(config.policies())
        .map_err(|problems| anyhow!("the policies do not load:\n{problems}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(serve(config, policies))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: ProxyConfig, policies: PolicyHandle) -> anyhow::Result<()> {
    let listen = config.listen();
    let dir = config.policies().to_path_buf();
    let teams = policies.current().teams().count();
    // Handlers first: SIGHUP's default action would end the process.
    let signals = Signals::install()?;
    let server = Server::bind(config, policies)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!(
        "privacy-router: {teams} team(s) loaded from {}",
        dir.display()
    );
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{}", server.local_addr())?;
        out.flush()?;
    }
    let reloader = server.reloader();
    let Signals { shutdown, hangup } = signals;
    if let Some(mut hangup) = hangup {
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                reloader.reload("SIGHUP").await;
            }
        });
    }
    server.run(shutdown).await?;
    Ok(())
}

struct Signals {
    shutdown: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
    #[cfg(not(unix))]
    hangup: Option<NoSignal>,
}

#[cfg(not(unix))]
struct NoSignal;

#[cfg(not(unix))]
impl NoSignal {
    async fn recv(&mut self) -> Option<()> {
        None
    }
}

impl Signals {
    #[cfg(unix)]
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
        Ok(Signals {
            shutdown: Box::pin(async move {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
            }),
            hangup: Some(hangup),
        })
    }

    #[cfg(not(unix))]
    fn install() -> anyhow::Result<Signals> {
        Ok(Signals {
            shutdown: Box::pin(async {
                let _ = tokio::signal::ctrl_c().await;
            }),
            hangup: None,
        })
    }
}
