//! `list`: databases by environment (being written).

use anyhow::Result;

use crate::config::Config;
use crate::flags;

impl flags::List {
    pub fn run(self, _config: Config) -> Result<()> {
        Err(crate::error::bad_input("list is not implemented yet"))
    }
}
