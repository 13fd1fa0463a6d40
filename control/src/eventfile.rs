//! The event log's file: opened safely (`safefile`: no symbolic link, no open directory) and
//! created mode 0640, appended to in whole lines, written to again by itself after a failure
//! (a full disk, an I/O error) with every event it could not write counted by cause, and
//! reopened on request for log rotation. Used by the control thread (or the offline event thread), never by a worker;
//! it never panics and never stops writing for good.

use crate::safefile::{self, Existing};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Events that could not be written, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostEvents {
    /// The file system was full (ENOSPC) or over quota (EDQUOT).
    pub disk_full: u64,
    /// Any other write error.
    pub io_error: u64,
    /// The file could not be (re)opened.
    pub not_open: u64,
}

impl LostEvents {
    pub fn total(&self) -> u64 {
        self.disk_full + self.io_error + self.not_open
    }
}

/// What `status` and `stats` show of the event log.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EventFileSnapshot {
    pub path: String,
    pub written: u64,
    pub lost: LostEvents,
    /// The last error, kept after writing works again.
    pub last_error: Option<String>,
    /// True while writes fail.
    pub failing: bool,
    pub reopened: u64,
}

pub struct EventFile {
    path: PathBuf,
    /// The group the file is given at every open.
    group: Option<u32>,
    file: Option<File>,
    written: u64,
    lost: LostEvents,
    last_error: Option<String>,
    failing: bool,
    reopened: u64,
}

impl EventFile {
    /// Opens `path` for appending (its directory created if missing); an error here stops the
    /// start, naming the path: a symbolic link, a directory, no permission.
    pub fn open(path: &Path) -> std::io::Result<EventFile> {
        Ok(EventFile {
            file: Some(open_append(path)?),
            path: path.to_path_buf(),
            group: None,
            written: 0,
            lost: LostEvents::default(),
            last_error: None,
            failing: false,
            reopened: 0,
        })
    }

    /// Appends `lines` (whole lines, `events` of them). A failed write is cut back to the last
    /// whole line where the file system lets us, and its events are counted as lost.
    pub fn append(&mut self, lines: &[u8], events: u64) {
        if lines.is_empty() {
            return;
        }
        if self.file.is_none() {
            if let Err(e) = self.reopen() {
                self.lost.not_open += events;
                self.failed(format!("cannot open: {e}"));
                return;
            }
        }
        let Some(f) = self.file.as_mut() else { return };
        let len = f.metadata().map(|m| m.len());
        match f.write_all(lines) {
            Ok(()) => {
                self.written += events;
                if self.failing {
                    self.failing = false;
                    eprintln!(
                        "portcullisd: event log {}: writing again ({} events lost so far)",
                        self.path.display(),
                        self.lost.total()
                    );
                }
            }
            Err(e) => {
                if let Ok(len) = len {
                    let _ = f.set_len(len);
                }
                match e.raw_os_error() {
                    Some(libc::ENOSPC) | Some(libc::EDQUOT) => self.lost.disk_full += events,
                    _ => self.lost.io_error += events,
                }
                self.failed(e.to_string());
            }
        }
    }

    /// Gives the file (now and at every reopen) to `gid`, so its members may read it.
    pub fn set_group(&mut self, gid: u32) -> std::io::Result<()> {
        self.group = Some(gid);
        match &self.file {
            Some(f) => std::os::unix::fs::fchown(f, None, Some(gid)),
            None => Ok(()),
        }
    }

    /// Opens the path again (after `mv` by logrotate, say); the old file is closed.
    pub fn reopen(&mut self) -> std::io::Result<()> {
        self.file = None;
        let f = open_append(&self.path)?;
        if let Some(g) = self.group {
            std::os::unix::fs::fchown(&f, None, Some(g))?;
        }
        self.file = Some(f);
        self.reopened += 1;
        Ok(())
    }

    fn failed(&mut self, e: String) {
        if !self.failing {
            eprintln!(
                "portcullisd: event log {}: {e}; events are counted as lost until writing works again",
                self.path.display()
            );
        }
        self.failing = true;
        self.last_error = Some(e);
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn lost(&self) -> LostEvents {
        self.lost
    }

    pub fn snapshot(&self) -> EventFileSnapshot {
        EventFileSnapshot {
            path: crate::decisions::clean(&self.path).display().to_string(),
            written: self.written,
            lost: self.lost,
            last_error: self.last_error.clone(),
            failing: self.failing,
            reopened: self.reopened,
        }
    }
}

/// Appending, created 0640 (events name every address and server a client used); see
/// `safefile` for what is refused.
fn open_append(path: &Path) -> std::io::Result<File> {
    safefile::open(path, Existing::Append, 0o640)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(test: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pc-evfile-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn created_0640_and_refuses_a_symlink() {
        let d = dir("mode");
        let p = d.join("eve.json");
        let mut f = EventFile::open(&p).unwrap();
        f.append(b"{}\n", 1);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o640, 0, "mode {mode:o}");
        let link = d.join("link.json");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let e = EventFile::open(&link).err().expect("a link is refused");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"{}\n");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn write_errors_are_counted_and_writing_resumes_after_reopen() {
        let d = dir("errors");
        let p = d.join("eve.json");
        let mut f = EventFile::open(&p).unwrap();
        f.append(b"{\"a\":1}\n", 1);
        // /dev/full fails every write with ENOSPC: swap it in as the open file.
        f.file = Some(
            std::fs::OpenOptions::new()
                .append(true)
                .open("/dev/full")
                .unwrap(),
        );
        f.append(b"{\"b\":2}\n{\"c\":3}\n", 2);
        assert_eq!(f.lost().disk_full, 2);
        assert!(f.snapshot().failing);
        f.reopen().unwrap();
        f.append(b"{\"d\":4}\n", 1);
        assert_eq!(f.written(), 2);
        assert!(!f.snapshot().failing);
        assert_eq!(std::fs::read(&p).unwrap(), b"{\"a\":1}\n{\"d\":4}\n");
        let _ = std::fs::remove_dir_all(&d);
    }
}
