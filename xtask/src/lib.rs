//! `cargo xtask` and the installed `pgdb`: adds, removes and checks the databases of a
//! Phalanx-style internal PostgreSQL. Both binaries call `main` here. See
//! `ARCHITECTURE.md` for the map of the code.

/// `print!` that ends quietly on a closed or full standard output: the output is
/// lost, the run goes on and ends with its usual status.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `println!` that ends quietly on a closed or full standard output (see `out!`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod add_db;
// Development only: `cargo run --release -p xtask --features bench -- bench`.
#[cfg(feature = "bench")]
mod bench;
mod check;
mod completion;
mod config;
mod db_edit;
mod deployment;
mod diff;
mod error;
mod files;
mod flags;
mod fsio;
mod git;
mod init;
mod known;
mod layout;
mod list;
mod local_db;
mod model;
mod move_db;
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
    // Output piped into `head` must not stop an edit half-way: a closed pipe is an
    // error the printing macros ignore, not a signal that kills the process.
    // SAFETY: setting a signal's action before any thread starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    quiet_on_closed_stdout();
    match run() {
        Ok(status) => ExitCode::from(status),
        Err(error) => {
            let mut message = format!("error: {error}");
            for cause in error.chain().skip(1) {
                message.push_str(&format!("\n  caused by: {cause}"));
            }
            // Values and file names quoted in a message cannot drive the terminal.
            eprintln!("{}", shell::escape_but(&message, &['\n']));
            ExitCode::from(error::exit_status(&error) as u8)
        }
    }
}

/// A `println!` left in a module that failed on a closed or full standard output
/// ends the process with status 1 and no panic message.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") {
            std::process::exit(1);
        }
        default(info);
    }));
}

fn run() -> anyhow::Result<u8> {
    let flags = flags::parse(std::env::args_os().skip(1))?;
    // The repositories, chosen once and named on stderr (`--quiet` silences that).
    let repositories = || -> anyhow::Result<config::Config> {
        let config = config::load(flags.phalanx.clone(), flags.charts.clone())?;
        if !flags.quiet {
            let kind = layout::Layout::detect(&config).ok().map(|l| l.kind);
            eprintln!("{}", layout::describe(&config, kind));
        }
        Ok(config)
    };
    match flags.command.clone() {
        Command::AddDb(cmd) => cmd.run(repositories()?).map(|()| 0),
        Command::RemoveDb(cmd) => cmd.run(repositories()?).map(|()| 0),
        Command::MoveDb(cmd) => cmd.run(repositories()?).map(|()| 0),
        Command::Check(cmd) => {
            let config = repositories()?;
            if let Some(pending) = fsio::pending_journal(&config.repositories()) {
                eprintln!("warning: {pending}");
            }
            cmd.run(config)
        }
        Command::List(cmd) => cmd.run(repositories()?).map(|()| 0),
        Command::Runbook(cmd) => cmd.run(repositories()?).map(|()| 0),
        Command::LocalDb(cmd) => cmd.run(repositories()?).map(|()| 0),
        Command::Init(cmd) => cmd.run(&flags).map(|()| 0),
        #[cfg(feature = "bench")]
        Command::Bench(cmd) => cmd.run().map(|()| 0),
        #[cfg(not(feature = "bench"))]
        Command::Bench(_) => Err(error::bad_input(
            "`bench` is development-only and not in this build: run \
             `cargo run --release -p xtask --features bench -- bench` in the xtask workspace",
        )),
        Command::Print(text) => {
            out!("{text}");
            Ok(0)
        }
    }
}
