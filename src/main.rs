//! The `meshgate` command line.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use meshgate::config::{self, GatewayConfig};
use meshgate::control::{Gateway, GatewayOptions, pidfile};
use meshgate::inspect::inspect;
use meshgate::logging::LogControl;
use meshgate_codecs::{Limits, Registry};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// mimalloc instead of glibc's malloc: the HTTP/2 path allocates per
/// stream (hyper's and h2's own state, each stream's boxed future of a few
/// KiB), and glibc's bins for blocks over 1 KiB cost about 1,000
/// instructions a block (BENCHMARKS.md, "The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The configuration `meshgate start` runs without `-c`: one `Auto`
/// listener on 127.0.0.1:2045 (bolt, Dubbo) forwarding every service to
/// 127.0.0.1:8080. Documented in README.md.
const DEFAULT_CONFIG: &str = include_str!("../examples/auto/config.json");

#[derive(Parser, Debug)]
#[command(
    name = "meshgate",
    version,
    about = "A multi-protocol RPC mesh gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway (MOSN's v2 JSON configuration).
    Start {
        /// Configuration file; without it, the built-in default config.
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Stop the running gateway (found through the config's `pid` file):
    /// it stops accepting, finishes in-flight requests and exits.
    Stop {
        /// The running gateway's configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// How long to wait for it to exit.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        wait: Duration,
    },
    /// Make the running gateway re-read its configuration file; the file
    /// is validated first.
    Reload {
        /// The configuration file (as the gateway was started with).
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Check a configuration file and explain every problem.
    Validate {
        /// The configuration file.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Print the version.
    Version,
    /// Detect the protocol of a capture (raw bytes of one direction of a
    /// connection) and print every frame in it.
    Decode {
        /// The capture file; `-` reads standard input.
        file: PathBuf,
        /// Protocols to detect among: `Auto`, a name, or a comma list.
        #[arg(long, default_value = "Auto")]
        detect: String,
        /// Skip detection and decode as this protocol.
        #[arg(long)]
        protocol: Option<String>,
        /// Register a generic x-protocol codec from its JSON config first
        /// (repeatable; see examples/generic/).
        #[arg(long = "generic", value_name = "CONFIG")]
        generic: Vec<PathBuf>,
        /// Largest frame accepted, in bytes.
        #[arg(long, default_value_t = Limits::DEFAULT_MAX_FRAME_LEN)]
        max_frame_len: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    meshgate_gocompat::parse_go_duration(text).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "meshgate: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Start { config } => start(config.as_deref()),
        Command::Stop { config, wait } => stop(&config, wait),
        Command::Reload { config } => reload(&config),
        Command::Validate { config } => validate(&config),
        Command::Version => {
            writeln!(std::io::stdout(), "meshgate {}", env!("CARGO_PKG_VERSION"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Decode {
            file,
            detect,
            protocol,
            generic,
            max_frame_len,
            json,
        } => {
            let bytes = if file.as_os_str() == "-" {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                    .context("reading standard input")?;
                bytes
            } else {
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?
            };
            let mut registry = Registry::builtin();
            for config in &generic {
                meshgate::generic::register_from_file(&mut registry, config)?;
            }
            let inspection = inspect(
                &registry,
                &detect,
                protocol.as_deref(),
                &bytes,
                &Limits::new(max_frame_len),
            )?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&inspection.to_json())?
                )?;
            } else {
                write!(out, "{inspection}")?;
            }
            Ok(if inspection.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn load(path: Option<&Path>) -> Result<GatewayConfig> {
    let loaded = match path {
        Some(path) => config::load_file(path, None),
        None => config::load_str(DEFAULT_CONFIG, None),
    };
    loaded.map_err(|errors| anyhow::anyhow!("{errors}"))
}

fn start(path: Option<&Path>) -> Result<ExitCode> {
    let config = load(path)?;
    let log = Arc::new(meshgate::logging::init(config.log_level.as_deref()));
    for warning in &config.warnings {
        tracing::warn!("config: {warning}");
    }
    let threads = match config.worker_threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    // One thread: tokio's single-threaded scheduler on the main thread, so
    // the process has no other thread (but an access log's writer).
    // Measured against one multi-threaded worker (bench/ab.sh), it spent
    // 4 % less CPU per proxied HTTP/1 request on average over six runs
    // (from 9 % less to 5 % more), 7 % less per Dubbo request, the same on
    // h2c.
    let mut runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut multi = tokio::runtime::Builder::new_multi_thread();
        multi.worker_threads(threads);
        multi
    };
    let runtime = runtime
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(config, path.map(Path::to_path_buf), log))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs until SIGTERM/SIGINT (graceful stop); SIGHUP reloads `path`;
/// SIGUSR1 reopens the access log files (logrotate). The process log goes
/// to stderr, so it has no file to reopen.
async fn serve(config: GatewayConfig, path: Option<PathBuf>, log: Arc<LogControl>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let pid = config.pid.clone();
    let grace = config.graceful_timeout;
    let options = GatewayOptions { log: Some(log) };
    let gateway = Gateway::start_with(config, options).await?;
    let _pid_file = match &pid {
        Some(pid) => Some(
            pidfile::PidFile::create(pid)
                .with_context(|| format!("writing pid file {}", pid.display()))?,
        ),
        None => None,
    };
    tracing::info!(pid = std::process::id(), "meshgate running");
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut user1 = signal(SignalKind::user_defined1())?;
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = user1.recv() => gateway.access_logs().reopen(),
            _ = hangup.recv() => match &path {
                Some(path) => match gateway.reload_file(path).await {
                    Ok(()) => {}
                    Err(e) => tracing::error!("reload refused, keeping the running configuration: {e}"),
                },
                None => tracing::warn!("SIGHUP ignored: started with the built-in config, nothing to re-read"),
            },
        }
    }
    tracing::info!(?grace, "stopping: draining in-flight requests");
    gateway.stop(grace).await;
    tracing::info!("stopped");
    Ok(())
}

/// The running instance's pid, from the config's `pid` file.
fn running_pid(path: &Path) -> Result<u32> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct PidOnly {
        pid: String,
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let parsed = meshgate_gocompat::from_str::<PidOnly>(&text)?;
    if parsed.value.pid.is_empty() {
        bail!(
            "{} has no \"pid\" key, so the running gateway cannot be found; add \"pid\": \"/path/meshgate.pid\"",
            path.display()
        );
    }
    let pid_path = PathBuf::from(&parsed.value.pid);
    match pidfile::read(&pid_path)? {
        Some(pid) if pidfile::process_alive(pid) => Ok(pid),
        Some(pid) => bail!(
            "{} names process {pid}, which is not running",
            pid_path.display()
        ),
        None => bail!(
            "{} does not exist: is the gateway running?",
            pid_path.display()
        ),
    }
}

fn signal_pid(pid: u32, signal: nix::sys::signal::Signal) -> Result<()> {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid)?);
    nix::sys::signal::kill(pid, signal).with_context(|| format!("signalling process {pid}"))
}

fn stop(path: &Path, wait: Duration) -> Result<ExitCode> {
    let pid = running_pid(path)?;
    signal_pid(pid, nix::sys::signal::Signal::SIGTERM)?;
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    while pidfile::process_alive(pid) {
        if waited >= wait {
            bail!("process {pid} is still draining after {wait:?}");
        }
        std::thread::sleep(step);
        waited += step;
    }
    writeln!(std::io::stdout(), "meshgate (pid {pid}) stopped")?;
    Ok(ExitCode::SUCCESS)
}

fn reload(path: &Path) -> Result<ExitCode> {
    if let Err(errors) = config::load_file(path, None) {
        writeln!(
            std::io::stderr(),
            "{errors}\nnot reloaded: the running gateway keeps its configuration"
        )?;
        return Ok(ExitCode::from(1));
    }
    let pid = running_pid(path)?;
    signal_pid(pid, nix::sys::signal::Signal::SIGHUP)?;
    writeln!(
        std::io::stdout(),
        "meshgate (pid {pid}) is reloading {}",
        path.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

fn validate(path: &Path) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match config::load_file(path, None) {
        Ok(config) => {
            for warning in &config.warnings {
                writeln!(out, "warning: {warning}")?;
            }
            writeln!(
                out,
                "{}: valid ({} listener{}, {} router{}, {} cluster{}, {} warning{})",
                path.display(),
                config.listeners.len(),
                plural(config.listeners.len()),
                config.routers.len(),
                plural(config.routers.len()),
                config.clusters.len(),
                plural(config.clusters.len()),
                config.warnings.len(),
                plural(config.warnings.len()),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for issue in &errors.errors {
                writeln!(out, "error: {issue}")?;
            }
            for issue in &errors.warnings {
                writeln!(out, "warning: {issue}")?;
            }
            writeln!(
                out,
                "{}: {} error{}",
                path.display(),
                errors.errors.len(),
                plural(errors.errors.len())
            )?;
            Ok(ExitCode::from(1))
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
