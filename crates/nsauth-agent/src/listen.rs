//! Opening the agent's listeners safely: a Unix socket (0600 in a private directory, a stale
//! socket removed only when nothing answers on it), loopback TCP, or sockets handed over by
//! the service manager (systemd's `LISTEN_FDS`).

use crate::config::Listen;
use nsauth_core::Error;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// An open listener.
#[derive(Debug)]
pub enum Listener {
    /// A Unix socket; `owned` is the path to remove on shutdown (none when inherited).
    Unix {
        /// The listener.
        listener: tokio::net::UnixListener,
        /// Our socket file, removed at shutdown, and its lock file.
        owned: Option<OwnedSocket>,
        /// For messages.
        label: String,
    },
    /// Loopback TCP (requests need the serve key).
    Tcp {
        /// The listener.
        listener: tokio::net::TcpListener,
        /// For messages.
        label: String,
    },
}

impl Listener {
    /// `unix:PATH` or `http://ADDR`, for messages and the start-up line.
    pub fn label(&self) -> &str {
        match self {
            Listener::Unix { label, .. } | Listener::Tcp { label, .. } => label,
        }
    }

    /// `true` for TCP: requests must carry the serve key.
    pub fn needs_key(&self) -> bool {
        matches!(self, Listener::Tcp { .. })
    }
}

/// A socket file this agent created, with the lock that proves it: removed on drop.
#[derive(Debug)]
pub struct OwnedSocket {
    path: PathBuf,
    _lock: File,
}

impl OwnedSocket {
    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OwnedSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Opens one `--listen` address (inside a tokio runtime). Usage problems — a directory
/// others can write to, a live agent on the socket, a port in use — are [`Error::Invalid`]
/// (exit 2).
pub fn open(listen: &Listen, default_dir: Option<&Path>) -> Result<Listener, Error> {
    match listen {
        Listen::Unix(path) => open_unix(path, default_dir),
        Listen::Tcp(addr) => {
            let std = std::net::TcpListener::bind(addr)
                .map_err(|e| Error::Invalid(format!("cannot listen on {addr}: {e}")))?;
            std.set_nonblocking(true)
                .map_err(|e| Error::Other(format!("cannot listen on {addr}: {e}")))?;
            let listener = tokio::net::TcpListener::from_std(std)
                .map_err(|e| Error::Other(format!("cannot listen on {addr}: {e}")))?;
            let addr = listener.local_addr().unwrap_or(*addr);
            Ok(Listener::Tcp {
                listener,
                label: format!("http://{addr}"),
            })
        }
    }
}

fn open_unix(path: &Path, default_dir: Option<&Path>) -> Result<Listener, Error> {
    let shown = path.display();
    // sockaddr_un holds about 108 bytes on Linux, 104 on macOS.
    if path.as_os_str().len() > 100 {
        return Err(Error::Invalid(format!(
            "the socket path {shown} is too long for a Unix socket (at most 100 bytes); use a shorter --listen unix:PATH"
        )));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| Error::Invalid(format!("the socket path {shown} has no directory")))?;
    let is_default = default_dir == Some(dir);
    if is_default && !dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::Invalid(format!("cannot create {}: {e}", dir.display())))?;
    }
    check_private_dir(dir, is_default)?;
    // The lock says which agent owns the socket path; it is never removed, so two agents
    // starting at once cannot both decide the socket is stale.
    let lock_path = PathBuf::from(format!("{}.lock", path.display()));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::Invalid(format!("cannot open {}: {e}", lock_path.display())))?;
    let _ = lock.set_permissions(std::fs::Permissions::from_mode(0o600));
    if lock.try_lock().is_err() {
        return Err(Error::Invalid(format!(
            "another agent is serving on unix:{shown}; stop it first (or use another --listen)"
        )));
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(Error::Invalid(format!(
                    "another agent is serving on unix:{shown}; stop it first (or use another --listen)"
                )));
            }
            tracing::info!(socket = %shown, "removing a stale socket nothing answers on");
            std::fs::remove_file(path).map_err(|e| {
                Error::Invalid(format!("cannot remove the stale socket {shown}: {e}"))
            })?;
        }
        Ok(_) => {
            return Err(Error::Invalid(format!(
                "{shown} exists and is not a socket; remove it or choose another --listen unix:PATH"
            )))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Invalid(format!("cannot inspect {shown}: {e}"))),
    }
    // Created 0600 from the start (no window in which others may connect), then checked.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    rustix::process::umask(old);
    let std = bound.map_err(|e| Error::Invalid(format!("cannot listen on unix:{shown}: {e}")))?;
    let owned = OwnedSocket {
        path: path.to_owned(),
        _lock: lock,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::Other(format!("cannot make {shown} private: {e}")))?;
    std.set_nonblocking(true)
        .map_err(|e| Error::Other(format!("cannot listen on unix:{shown}: {e}")))?;
    let listener = tokio::net::UnixListener::from_std(std)
        .map_err(|e| Error::Other(format!("cannot listen on unix:{shown}: {e}")))?;
    Ok(Listener::Unix {
        listener,
        owned: Some(owned),
        label: format!("unix:{shown}"),
    })
}

/// Refuses a socket directory owned by someone else or writable by group or others (anyone
/// who can write there can replace the socket and receive tokens' requests, or a client's
/// key). The default directory is made 0700.
fn check_private_dir(dir: &Path, tighten: bool) -> Result<(), Error> {
    let meta = std::fs::metadata(dir).map_err(|e| {
        Error::Invalid(format!(
            "the socket directory {} is not usable: {e}",
            dir.display()
        ))
    })?;
    let me = rustix::process::getuid().as_raw();
    if meta.uid() != me {
        return Err(Error::Invalid(format!(
            "the socket directory {} belongs to user {}, not you ({me}); use a directory of your own",
            dir.display(),
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if tighten && mode != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::Invalid(format!("cannot make {} private: {e}", dir.display())))?;
        return Ok(());
    }
    if mode & 0o022 != 0 {
        return Err(Error::Invalid(format!(
            "the socket directory {} is writable by others (mode {mode:o}); use a private directory (chmod 700)",
            dir.display()
        )));
    }
    Ok(())
}

/// The sockets passed in by the service manager (systemd socket activation): when
/// `LISTEN_PID` is this process, `LISTEN_FDS` descriptors starting at 3. The variables are
/// removed so that children do not inherit them.
pub fn inherited() -> Result<Vec<Listener>, Error> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(Vec::new());
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(Vec::new());
    }
    let n: i32 = fds
        .trim()
        .parse()
        .ok()
        .filter(|n| (0..=16).contains(n))
        .ok_or_else(|| Error::Invalid(format!("LISTEN_FDS={fds:?} is not a small number")))?;
    let mut out = Vec::new();
    for fd in 3..3 + n {
        out.push(adopt(fd)?);
    }
    Ok(out)
}

/// Takes ownership of an inherited listening socket.
#[allow(unsafe_code)]
fn adopt(fd: i32) -> Result<Listener, Error> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: systemd passes LISTEN_FDS open descriptors from 3 on, owned by this process
    // (LISTEN_PID matched) and used nowhere else; each is adopted exactly once.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let unix = std::os::unix::net::UnixListener::from(owned);
    if let Ok(addr) = unix.local_addr() {
        let label = match addr.as_pathname() {
            Some(p) => format!("unix:{} (from the service manager)", p.display()),
            None => "unix:(from the service manager)".to_owned(),
        };
        unix.set_nonblocking(true)
            .map_err(|e| Error::Other(format!("inherited socket {fd}: {e}")))?;
        let listener = tokio::net::UnixListener::from_std(unix)
            .map_err(|e| Error::Other(format!("inherited socket {fd}: {e}")))?;
        return Ok(Listener::Unix {
            listener,
            owned: None,
            label,
        });
    }
    let tcp = std::net::TcpListener::from(OwnedFd::from(unix));
    let addr = tcp.local_addr().map_err(|e| {
        Error::Invalid(format!(
            "inherited descriptor {fd} is neither a Unix nor a TCP socket: {e}"
        ))
    })?;
    if !addr.ip().is_loopback() {
        return Err(Error::Invalid(format!(
            "the service manager passed a socket on {addr}; the agent listens on loopback only"
        )));
    }
    tcp.set_nonblocking(true)
        .map_err(|e| Error::Other(format!("inherited socket {fd}: {e}")))?;
    let listener = tokio::net::TcpListener::from_std(tcp)
        .map_err(|e| Error::Other(format!("inherited socket {fd}: {e}")))?;
    Ok(Listener::Tcp {
        listener,
        label: format!("http://{addr} (from the service manager)"),
    })
}
