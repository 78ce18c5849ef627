//! `remove-db`: the inverse of add-db (being written).

use anyhow::Result;

use crate::config::Config;
use crate::flags;

impl flags::RemoveDb {
    pub fn run(self, _config: Config) -> Result<()> {
        Err(crate::error::bad_input("remove-db is not implemented yet"))
    }
}
