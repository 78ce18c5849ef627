//! The integration tests, one binary: each module runs the real `xtask` binary (or a
//! real server, shell or tool beside it) on scratch copies of the trees under `tests/`.
//!
//! Run one family with `cargo test --test testsuite check::`, one case with its name
//! (`cargo test --test testsuite cases::split_add_one_env`). `BLESS=1` rewrites the
//! expected output of the cases (read the diff before committing it).

mod adversarial;
mod cases;
mod check;
mod cli;
mod common;
mod consumers;
mod discovery;
mod generator_python;
mod helm_render;
mod init;
mod list;
mod local_db;
mod local_db_container;
mod local_db_support;
mod move_db;
mod precommit;
mod round_trip;
mod runbook_paste;
mod runbook_text;
mod runbook_vault;
