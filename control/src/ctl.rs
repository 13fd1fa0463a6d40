//! The control socket: a Unix stream socket served by the control thread. One JSON request per
//! line (`{"cmd":"status"}`, `{"cmd":"stats"}`), one JSON response per line. Non-blocking: the
//! control thread polls it between its other duties and never waits on a slow client for long.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub cmd: String,
}

/// A served socket; the file is removed on drop.
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    pub fn bind(path: &Path) -> std::io::Result<ControlSocket> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // A socket file left by a crashed instance would make bind fail; if nobody answers on it,
        // it is stale.
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{} is served by a running portcullisd", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Ok(ControlSocket {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// Answers every pending connection with `respond(cmd)`; returns without waiting when none is
    /// pending.
    pub fn serve_pending(&self, mut respond: impl FnMut(&str) -> serde_json::Value) {
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = handle(stream, &mut respond);
        }
    }
}

fn handle(
    stream: UnixStream,
    respond: &mut impl FnMut(&str) -> serde_json::Value,
) -> std::io::Result<()> {
    let line = read_request(&stream)?;
    let reply = match serde_json::from_str::<Request>(line.trim()) {
        Ok(req) => respond(&req.cmd),
        Err(e) => serde_json::json!({"error": format!("bad request: {e}")}),
    };
    let mut w = &stream;
    serde_json::to_writer(&mut w, &reply)?;
    w.write_all(b"\n")?;
    Ok(())
}

/// Longest request accepted, and how long a client may take to send it: the control thread also
/// watches signals and stop conditions, so a slow or hostile client must not hold it.
const MAX_REQUEST: usize = 4096;
const REQUEST_DEADLINE: Duration = Duration::from_millis(500);

fn read_request(stream: &UnixStream) -> std::io::Result<String> {
    use std::io::Read;
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(REQUEST_DEADLINE))?;
    let start = std::time::Instant::now();
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    let mut s = stream;
    while !buf.contains(&b'\n') {
        let left = REQUEST_DEADLINE.saturating_sub(start.elapsed());
        if left.is_zero() || buf.len() > MAX_REQUEST {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request too slow or too long",
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match s.read(&mut chunk)? {
            0 => break,
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Client side, for portcullisctl: sends one command, returns the parsed reply.
pub fn request(path: &Path, cmd: &str) -> Result<serde_json::Value, String> {
    let stream = UnixStream::connect(path).map_err(|e| {
        format!(
            "cannot connect to {} ({e}); is portcullisd running?",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut w = &stream;
    serde_json::to_writer(
        &mut w,
        &Request {
            cmd: cmd.to_string(),
        },
    )
    .map_err(|e| e.to_string())?;
    w.write_all(b"\n").map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(|e| format!("no reply from {}: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| format!("bad reply: {e}"))?;
    if let Some(err) = v.get("error") {
        return Err(err.to_string());
    }
    Ok(v)
}
