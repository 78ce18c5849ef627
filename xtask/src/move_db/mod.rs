//! `move-db`: a database leaves the internal postgres for another server. `target`
//! parses where it goes; the runbook of the move is `runbook::build_move`.

pub mod target;
