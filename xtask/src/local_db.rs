//! `local-db`: a local PostgreSQL (being written).

use anyhow::Result;

use crate::config::Config;
use crate::flags;

impl flags::LocalDb {
    pub fn run(self, _config: Config) -> Result<()> {
        Err(crate::error::bad_input("local-db is not implemented yet"))
    }
}
