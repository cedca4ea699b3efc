//! `netctl`: the command line client of the netmaster, command-compatible with Contiv's netctl.
//! Errors go to stderr in Contiv's (logrus) style, `ERRO[0000] <message>`, with exit code 1.

mod args;
mod cli;
mod client;
mod commands;
mod table;
mod tokens;

use clap::{CommandFactory, Parser};
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let argv = args::normalise(argv, &cli::Cli::command());
    let cli = cli::Cli::parse_from(argv);
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ERRO[0000] {e:#}");
            ExitCode::FAILURE
        }
    }
}
