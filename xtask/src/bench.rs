//! `bench`: measures `check` (being written).

use anyhow::Result;

use crate::flags;

impl flags::Bench {
    pub fn run(self) -> Result<()> {
        Err(crate::error::bad_input("bench is not implemented yet"))
    }
}
