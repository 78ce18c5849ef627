//! `pgdb`: the installable name of the xtask, for operators who run it from inside
//! their deployment repository (`cargo install --path .` in this workspace).

fn main() -> std::process::ExitCode {
    xtask::main()
}
