//! The `meshgate` command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use meshgate::inspect::inspect;
use meshgate_codecs::{Limits, Registry};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

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
