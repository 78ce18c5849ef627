//! Exit statuses and the two kinds of refusal.
//!
//! Every command returns `anyhow::Result<()>`. An error that carries a [`Refusal`]
//! ends the process with that refusal's status; any other error means bad input
//! (status 2), because all I/O and parse failures are the user's files or words.

use std::fmt;

/// Why a command stopped without doing its work.
#[derive(Debug)]
pub struct Refusal {
    pub status: i32,
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

/// Exit status 1: the repositories do not allow the operation (a collision, a shared role).
pub const REFUSED: i32 = 1;
/// Exit status 2: bad usage or bad input.
pub const BAD_INPUT: i32 = 2;

/// An error for bad usage or bad input (exit status 2).
pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
    Refusal {
        status: BAD_INPUT,
        message: message.into(),
    }
    .into()
}

/// An error for an operation the repositories' state forbids (exit status 1).
pub fn refused(message: impl Into<String>) -> anyhow::Error {
    Refusal {
        status: REFUSED,
        message: message.into(),
    }
    .into()
}

/// The exit status an error ends the process with.
pub fn exit_status(error: &anyhow::Error) -> i32 {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Refusal>())
        .map_or(BAD_INPUT, |r| r.status)
}
