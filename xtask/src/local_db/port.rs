//! The port of a local cluster: the one asked for, else the last one while it is
//! free, else a free one; a running server moved to another port starts again on
//! its old one when the new one fails.

use anyhow::{anyhow, Result};
use std::net::TcpListener;

use super::folder::Paths;
use super::server::{self, RunAs, Tools};
use crate::error::bad_input;
use crate::flags::PortChoice;

/// Whether nothing listens on `port` of 127.0.0.1 (other bind failures, such as a
/// privileged port, are left for the server to report).
fn check_port_free(port: u16) -> Result<()> {
    match TcpListener::bind(("127.0.0.1", port)) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(bad_input(format!(
            "port {port} on 127.0.0.1 is in use; choose another with `--port N` \
             (or `--port 0` for a free one)"
        ))),
        _ => Ok(()),
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| anyhow!("cannot find a free port on 127.0.0.1: {e}"))?;
    Ok(listener.local_addr()?.port())
}

/// Starts the server (or keeps it running, or moves it to the port asked for) and
/// returns its port.
pub fn start_on(tools: &Tools, run_as: &RunAs, paths: &Paths, port: PortChoice) -> Result<u16> {
    let asked = match port {
        PortChoice::Free => Some(free_port()?),
        PortChoice::Fixed(port) => Some(port),
        PortChoice::Remembered => None,
    };
    let running = server::server_pid(paths).is_some();
    let current = if running {
        server::running_port(paths)
    } else {
        None
    };
    Ok(match (running, current, asked) {
        (true, Some(current), Some(asked)) if current != asked => {
            check_port_free(asked)?;
            eprintln!("moving the server from port {current} to {asked}");
            server::stop(tools, run_as, paths)?;
            if let Err(failed) = server::start(tools, run_as, paths, asked) {
                let back = match server::start(tools, run_as, paths, current) {
                    Ok(()) => format!("it runs again on port {current}"),
                    Err(e) => format!("and it did not start again on port {current} either: {e:#}"),
                };
                return Err(failed.context(back));
            }
            asked
        }
        (true, Some(current), _) => current,
        (true, None, _) => {
            return Err(anyhow!(
                "{}: the server runs but its port is unknown",
                paths.data.display()
            ))
        }
        (false, _, Some(asked)) => {
            check_port_free(asked)?;
            server::start(tools, run_as, paths, asked)?;
            asked
        }
        (false, _, None) => {
            let port = match server::saved_port(paths) {
                Some(saved) if check_port_free(saved).is_ok() => saved,
                Some(saved) => {
                    let port = free_port()?;
                    eprintln!("port {saved} is taken now; using {port}");
                    port
                }
                None => free_port()?,
            };
            server::start(tools, run_as, paths, port)?;
            port
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_port_is_in_use() {
        let busy = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = busy.local_addr().unwrap().port();
        let err = check_port_free(port).unwrap_err().to_string();
        assert!(err.contains("in use") && err.contains("--port N"), "{err}");
        drop(busy);
    }
}
