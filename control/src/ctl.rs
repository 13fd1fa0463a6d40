//! The control socket: a Unix stream socket served by the control thread. One JSON request per
//! line (`{"cmd":"status"}`, `{"cmd":"stats"}`), one JSON response per line. Non-blocking: the
//! control thread polls it between its other duties and never waits on a slow client for long.
//!
//! It owns who may ask what: the socket file is mode 0660 whatever the umask, in the configured
//! group, so only root and that group can connect; every peer is identified by SO_PEERCRED;
//! commands that change the appliance (`CHANGING`) are served only to root or members of the
//! admin group, and each is returned to the caller for the audit trail. It never replaces a
//! path that is anything but a stale socket.

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::{Gid, Group, Uid, User};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Commands that change the appliance: served to root and the admin group only, and audited.
pub const CHANGING: [&str; 4] = ["reload", "ha promote", "ha demote", "reopen-logs"];

/// Who may connect (the socket's group) and who may change things (the admin group).
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub group: Option<Gid>,
    pub admin_group: Option<Gid>,
}

impl Access {
    /// Resolves the configured group names; an unknown group is an error naming it.
    pub fn from_names(group: Option<&str>, admin: Option<&str>) -> Result<Access, String> {
        let gid = |name: &str| -> Result<Gid, String> {
            match Group::from_name(name) {
                Ok(Some(g)) => Ok(g.gid),
                Ok(None) => Err(format!("group '{name}' does not exist")),
                Err(e) => Err(format!("group '{name}': {e}")),
            }
        };
        Ok(Access {
            group: group.map(gid).transpose()?,
            admin_group: admin.map(gid).transpose()?,
        })
    }

    /// Root, or a member (primary or supplementary) of the admin group.
    pub fn may_change(&self, peer: &Peer) -> bool {
        if peer.uid == 0 {
            return true;
        }
        let Some(admin) = self.admin_group else {
            return false;
        };
        if peer.gid == admin.as_raw() {
            return true;
        }
        let Ok(Some(user)) = User::from_uid(Uid::from_raw(peer.uid)) else {
            return false;
        };
        let Ok(name) = std::ffi::CString::new(user.name) else {
            return false;
        };
        nix::unistd::getgrouplist(&name, user.gid)
            .map(|groups| groups.contains(&admin))
            .unwrap_or(false)
    }
}

/// The process at the other end of a connection, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
}

/// A changing command as served: for the audit trail (`control` events).
#[derive(Debug, Clone)]
pub struct Audit {
    pub peer: Peer,
    pub cmd: String,
    /// "ok", "refused" (not permitted) or "error".
    pub result: &'static str,
    pub detail: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub cmd: String,
}

/// A served socket; the file is removed on drop.
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    access: Access,
}

impl ControlSocket {
    /// Binds `path` (mode 0660, in `access.group`). The path must not exist, or be a socket
    /// nobody answers on (left by a crashed instance); anything else is refused, untouched.
    pub fn bind(path: &Path, access: Access) -> std::io::Result<ControlSocket> {
        clear_stale(path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        // Bound under a name of our own, given its mode and group, then moved into place: no
        // moment exists in which the path is a socket with the umask's mode.
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let tmp = path.with_file_name(format!(
            ".{}.{}.tmp",
            name.unwrap_or_default(),
            std::process::id()
        ));
        let _ = std::fs::remove_file(&tmp);
        let listener = UnixListener::bind(&tmp)?;
        let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o660))
            .and_then(|()| match access.group {
                Some(g) => std::os::unix::fs::chown(&tmp, None, Some(g.as_raw())),
                None => Ok(()),
            })
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        listener.set_nonblocking(true)?;
        Ok(ControlSocket {
            listener,
            path: path.to_path_buf(),
            access,
        })
    }

    /// Answers every pending connection with `respond(cmd)`; returns without waiting when none is
    /// pending, with the changing commands asked (served or refused) for the audit trail.
    pub fn serve_pending(&self, mut respond: impl FnMut(&str) -> serde_json::Value) -> Vec<Audit> {
        let mut audits = Vec::new();
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = self.handle(stream, &mut respond, &mut audits);
        }
        audits
    }

    fn handle(
        &self,
        stream: UnixStream,
        respond: &mut impl FnMut(&str) -> serde_json::Value,
        audits: &mut Vec<Audit>,
    ) -> std::io::Result<()> {
        let cred = getsockopt(&stream, PeerCredentials).map_err(std::io::Error::from)?;
        let peer = Peer {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
        };
        let line = read_request(&stream)?;
        let reply = match serde_json::from_str::<Request>(line.trim()) {
            Ok(req) if CHANGING.contains(&req.cmd.as_str()) => {
                let (reply, result) = if self.access.may_change(&peer) {
                    let r = respond(&req.cmd);
                    let result = if r.get("error").is_some() {
                        "error"
                    } else {
                        "ok"
                    };
                    (r, result)
                } else {
                    let msg = format!(
                        "'{}' is not permitted for uid {}: changing commands need root or the \
                         admin group ([control] admin_group)",
                        req.cmd, peer.uid
                    );
                    (serde_json::json!({ "error": msg }), "refused")
                };
                let detail = reply
                    .get("error")
                    .or_else(|| reply.get("ok"))
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string();
                audits.push(Audit {
                    peer,
                    cmd: req.cmd,
                    result,
                    detail,
                });
                reply
            }
            Ok(req) => respond(&req.cmd),
            Err(e) => serde_json::json!({"error": format!("bad request: {e}")}),
        };
        let mut w = &stream;
        serde_json::to_writer(&mut w, &reply)?;
        w.write_all(b"\n")?;
        Ok(())
    }
}

/// Makes room for the socket: nothing there, or a socket nobody serves (removed). A served
/// socket, a regular file, a directory or a link is refused and left as it is.
fn clear_stale(path: &Path) -> std::io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "exists and is not a socket; refusing to replace it (remove it, or set [control] socket)",
        ));
    }
    if UnixStream::connect(path).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "is served by a running portcullisd",
        ));
    }
    std::fs::remove_file(path)
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
