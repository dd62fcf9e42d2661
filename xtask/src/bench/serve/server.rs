//! Starting a server process, waiting for its `listening on http://HOST:PORT` line, and
//! stopping it with SIGTERM.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::load;
use crate::bench::BenchError;

/// The line prefix both servers print on stderr once they accept connections.
pub const LISTENING: &str = "listening on http://";
/// Lines of the server's stderr kept for error messages.
const TAIL_LINES: usize = 12;

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// A short name for messages (`spectrans-rs`, `pytorch`).
    pub name: String,
    /// Where it listens (loopback).
    pub addr: SocketAddr,
    child: Child,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Server {
    /// Spawns `cmd` (stderr piped, stdout discarded) and waits up to `ready_within` for its
    /// `listening on` line, then for `GET /health` to answer 200.
    pub fn start(name: &str, mut cmd: Command, ready_within: Duration) -> Result<Self, BenchError> {
        let command = format!("{cmd:?}");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| BenchError::Spawn {
            command: command.clone(),
            source,
        })?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            let tail = Arc::clone(&tail);
            // Reads stderr to its end (a full pipe would block the server), keeps the last
            // lines, and hands over the first address line.
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    // Only the first address line counts.
                    if let Some(addr) = parse_listening(&line)
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send(addr);
                    }
                    if let Ok(mut t) = tail.lock() {
                        if t.len() == TAIL_LINES {
                            t.pop_front();
                        }
                        t.push_back(line);
                    }
                }
            });
        }
        let mut server = Self {
            name: name.to_string(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            tail,
        };
        let deadline = Instant::now() + ready_within;
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(addr) => break addr,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = server.child.try_wait() {
                        return Err(
                            server.failure(format!("exited with {status} before listening"))
                        );
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(server.failure(format!(
                        "printed no `{LISTENING}HOST:PORT` line within {ready_within:?}"
                    )));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stderr closed without the line: the process is gone or going.
                    std::thread::sleep(Duration::from_millis(200));
                    return Err(server.failure("closed stderr without listening".into()));
                }
            }
        };
        let addr = addr.map_err(|why| server.failure(why))?;
        server.addr = addr;
        let health_deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match load::request_once(addr, "/health", None, Duration::from_secs(5)) {
                Ok((200, _)) => break,
                other if Instant::now() > health_deadline => {
                    return Err(
                        server.failure(format!("GET /health never answered 200: {other:?}"))
                    );
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        eprintln!(
            "bench serve: {name} listening on {addr} (pid {})",
            server.pid()
        );
        Ok(server)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of its stderr, joined with ` | `.
    pub fn stderr_tail(&self) -> String {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join(" | "))
            .unwrap_or_default()
    }

    /// SIGTERM, then up to `grace` for it to exit, then SIGKILL; the exit status as text.
    pub fn stop(mut self, grace: Duration) -> String {
        let pid = self.pid().to_string();
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.to_string();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(status) => format!("{status} (killed after {grace:?} without exiting on SIGTERM)"),
            Err(e) => format!("unknown ({e})"),
        }
    }

    /// A [`BenchError::Failed`]-like error with the server's stderr tail; kills the process.
    fn failure(&mut self, why: String) -> BenchError {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Give the reader thread a moment to collect the last lines.
        std::thread::sleep(Duration::from_millis(100));
        BenchError::Server(format!(
            "{} server {why}; its stderr ends: {}",
            self.name,
            self.stderr_tail()
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address of a `listening on http://HOST:PORT` line (anywhere in the line, so that a
/// log prefix does not hide it); `Some(Err)` when the line has the prefix but no loopback
/// `HOST:PORT` after it.
pub fn parse_listening(line: &str) -> Option<Result<SocketAddr, String>> {
    let at = line.find(LISTENING)?;
    let rest = &line[at + LISTENING.len()..];
    let hostport = rest
        .split(|c: char| c.is_whitespace() || c == '/')
        .next()
        .unwrap_or("");
    let hostport = hostport.replace("localhost:", "127.0.0.1:");
    Some(match hostport.parse::<SocketAddr>() {
        Ok(addr) if addr.ip().is_loopback() => Ok(addr),
        Ok(addr) => Err(format!(
            "listens on {addr}, not on a loopback address; start it with --host 127.0.0.1"
        )),
        Err(_) => Err(format!(
            "printed `{}` without a HOST:PORT after `{LISTENING}`",
            line.trim()
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::parse_listening;
    use std::net::SocketAddr;

    #[test]
    fn finds_the_address_in_the_ready_line() {
        let want: SocketAddr = ([127, 0, 0, 1], 40727).into();
        assert_eq!(
            parse_listening("listening on http://127.0.0.1:40727"),
            Some(Ok(want))
        );
        assert_eq!(
            parse_listening("2026-12-05T20:00:00Z INFO listening on http://127.0.0.1:40727/ now"),
            Some(Ok(want))
        );
        assert_eq!(
            parse_listening("listening on http://localhost:40727"),
            Some(Ok(want))
        );
        assert_eq!(parse_listening("loading the model"), None);
        assert!(matches!(
            parse_listening("listening on http://0.0.0.0:80"),
            Some(Err(_))
        ));
        assert!(matches!(
            parse_listening("listening on http://nowhere"),
            Some(Err(_))
        ));
    }
}
