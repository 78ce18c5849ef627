//! `check`: cross-file consistency (being written).

use anyhow::Result;

use crate::config::Config;
use crate::flags;

impl flags::Check {
    pub fn run(self, _config: Config) -> Result<u8> {
        Err(crate::error::bad_input("check is not implemented yet"))
    }
}
