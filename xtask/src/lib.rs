//! `cargo xtask` and the installed `pgdb`: adds, removes and checks the databases of a
//! Phalanx-style internal PostgreSQL. Both binaries call `main` here. See
//! `ARCHITECTURE.md` for the map of the code.

mod add_db;
mod bench;
mod check;
mod config;
mod deployment;
mod diff;
mod error;
mod files;
mod flags;
mod fsio;
mod git;
mod init;
mod layout;
mod list;
mod local_db;
mod names;
mod plan;
mod remove_db;
mod render;
mod runbook;
mod shell;

use std::process::ExitCode;

use flags::Command;

/// The whole program: parses the arguments, runs the command, and turns its error
/// into a message on stderr and an exit status.
pub fn main() -> ExitCode {
    // Output piped into `head` ends quietly, as other command-line tools do.
    // SAFETY: restoring the default action of a signal before any thread starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match run() {
        Ok(status) => ExitCode::from(status),
        Err(error) => {
            let mut message = format!("error: {error}");
            for cause in error.chain().skip(1) {
                message.push_str(&format!("\n  caused by: {cause}"));
            }
            eprintln!("{message}");
            ExitCode::from(error::exit_status(&error) as u8)
        }
    }
}

fn run() -> anyhow::Result<u8> {
    let flags = flags::parse(std::env::args_os().skip(1))?;
    // The repositories, chosen once and named on stderr (`--quiet` silences that).
    let repositories = || -> anyhow::Result<config::Config> {
        let config = config::load(flags.phalanx.clone(), flags.charts.clone())?;
        if !flags.quiet {
            let kind = layout::Layout::detect(&config).ok().map(|l| l.kind);
            eprintln!("{}", config.describe(kind));
        }
        Ok(config)
    };
    match flags.command.clone() {
        Command::AddDb(cmd) => cmd.run(repositories()?).map(|()| 0),
        Command::RemoveDb(cmd) => cmd.run(repositories()?).map(|()| 0),
        Command::Check(cmd) => cmd.run(repositories()?),
        Command::List(cmd) => cmd.run(repositories()?).map(|()| 0),
        Command::Runbook(cmd) => cmd.run(repositories()?).map(|()| 0),
        Command::LocalDb(cmd) => cmd.run(repositories()?).map(|()| 0),
        Command::Init(cmd) => cmd.run(&flags).map(|()| 0),
        Command::Bench(cmd) => cmd.run().map(|()| 0),
        Command::Print(text) => {
            print!("{text}");
            Ok(0)
        }
    }
}
