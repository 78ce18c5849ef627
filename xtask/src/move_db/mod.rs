//! `move-db`: a database leaves the internal postgres for another server. `target`
//! parses where it goes; the runbook of the move is `runbook::build_move`.

#[allow(dead_code)] // until the move-db command (next commits) calls them
pub mod edit;
pub mod target;
