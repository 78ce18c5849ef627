//! Ctrl-C (SIGINT) and SIGTERM during an edit command.
//!
//! An edit installs the handlers when it takes its locks ([`install`]). While it
//! plans, an interrupt ends the process at once (no file is written before the
//! plan is complete). While it writes ([`writing`]), an interrupt is only recorded:
//! the write layer looks at it between its temporary files and before its first
//! rename (then it removes what it staged: no file changed), and once the renames
//! have begun it finishes all of them (they take microseconds) before it stops.
//! Either way the run says what happened and ends with status 130, leaving no
//! temporary file and no journal behind. After the writes, an interrupt ends the
//! process saying the files are written.

use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};

use crate::error::Refusal;

/// The exit status of an interrupted run (128 + SIGINT, as shells report it).
pub const INTERRUPTED: i32 = 130;

const PLANNING: u8 = 1;
const WRITING: u8 = 2;
const WRITTEN: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(0);
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    let message: &[u8] = match STATE.load(Ordering::SeqCst) {
        WRITING => {
            PENDING.store(signal, Ordering::SeqCst);
            return;
        }
        WRITTEN => b"\ninterrupted: every file of the change was already written\n",
        _ => b"\ninterrupted while planning: no file was changed\n",
    };
    // SAFETY: write(2) and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(2, message.as_ptr().cast(), message.len());
        libc::_exit(INTERRUPTED);
    }
}

/// Handles SIGINT and SIGTERM from now on, as described in the module's
/// documentation; the edit is planning.
pub fn install() {
    STATE.store(PLANNING, Ordering::SeqCst);
    // SAFETY: a zeroed sigaction with a handler that only touches atomics and
    // calls async-signal-safe functions.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_flags = libc::SA_RESTART;
        for signal in [libc::SIGINT, libc::SIGTERM] {
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// From now on an interrupt is recorded, not acted on (until [`written`]).
pub fn writing() {
    if STATE.load(Ordering::SeqCst) != 0 {
        STATE.store(WRITING, Ordering::SeqCst);
    }
}

/// How the writes ended, which decides what an interrupt after them says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every file of the change was written.
    AllWritten,
    /// The writes failed; no file or, after a failed rename, not all changed.
    Failed,
}

/// The writes ended: an interrupt acts at once again, saying what `outcome` was.
pub fn written(outcome: Outcome) {
    if STATE.load(Ordering::SeqCst) != 0 {
        let state = match outcome {
            Outcome::AllWritten => WRITTEN,
            Outcome::Failed => PLANNING,
        };
        STATE.store(state, Ordering::SeqCst);
    }
}

/// Whether an interrupt arrived while writing.
pub fn pending() -> bool {
    PENDING.load(Ordering::SeqCst) != 0
}

/// The error that ends an interrupted run with status 130, saying `what` happened.
pub fn stopped(what: &str) -> anyhow::Error {
    let signal = match PENDING.load(Ordering::SeqCst) {
        libc::SIGTERM => "SIGTERM",
        _ => "Ctrl-C (SIGINT)",
    };
    Refusal {
        status: INTERRUPTED,
        message: format!("interrupted by {signal}: {what}"),
    }
    .into()
}
