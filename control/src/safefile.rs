//! Files the appliance creates where an operator points it (the event log, `--write`,
//! `--stats-json`): never opened through a symbolic link (O_NOFOLLOW), never in a directory that
//! users other than its owner may write to unless it is sticky and root's (as /tmp is), created
//! with the mode asked whatever the umask lets through. Refusals say why. Never used by a worker.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// How an existing file is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Append,
    Truncate,
}

/// Opens `path` for writing (created with `mode` if missing; its directory too).
pub fn open(path: &Path, existing: Existing, mode: u32) -> std::io::Result<File> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    check_dir(dir)?;
    let mut o = OpenOptions::new();
    o.create(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    match existing {
        Existing::Append => o.append(true),
        Existing::Truncate => o.write(true).truncate(true),
    };
    o.open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            std::io::Error::new(
                e.kind(),
                "is a symbolic link; give the real path (links are not followed)",
            )
        } else {
            e
        }
    })
}

/// A directory others may write to could have the file replaced under us; a sticky one owned
/// by root (/tmp) keeps each user to their own names.
fn check_dir(dir: &Path) -> std::io::Result<()> {
    let m = std::fs::metadata(dir)?;
    let others_write = m.mode() & 0o002 != 0;
    let sticky_root = m.mode() & 0o1000 != 0 && m.uid() == 0;
    if others_write && !sticky_root {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "directory {} is writable by every user (mode {:o}) and not sticky: \
                 choose a directory only its owner can write to",
                dir.display(),
                m.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn refuses_links_and_open_directories_and_keeps_the_mode() {
        let d = std::env::temp_dir().join(format!("pc-safefile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let f = d.join("out.pcap");
        open(&f, Existing::Truncate, 0o600).unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777 & !0o600, 0);
        std::os::unix::fs::symlink(&f, d.join("link")).unwrap();
        let e = open(&d.join("link"), Existing::Append, 0o600).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let open_dir = d.join("open");
        std::fs::create_dir(&open_dir).unwrap();
        std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = open(&open_dir.join("x"), Existing::Truncate, 0o600).unwrap_err();
        assert!(e.to_string().contains("writable by every user"), "{e}");
        // /tmp: sticky and root's (where the tests run as root, and on any Debian system).
        let tmp_ok = std::fs::metadata("/tmp")
            .map(|m| m.mode() & 0o1002 == 0o1002 && m.uid() == 0)
            .unwrap_or(false);
        if tmp_ok {
            let p = Path::new("/tmp").join(format!("pc-safefile-{}.tmp", std::process::id()));
            open(&p, Existing::Truncate, 0o600).unwrap();
            let _ = std::fs::remove_file(p);
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}
