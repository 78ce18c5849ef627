//! `cargo xtask`, the workspace's alias for this crate's binary: the program is in `lib.rs`.

fn main() -> std::process::ExitCode {
    xtask::main()
}
