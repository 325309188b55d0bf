//! One running plugin: spawning it with a reduced environment, one request and its reply
//! within a deadline, and its stderr forwarded to the log.
//!
//! A [`Conn`] is used for one request at a time (the store keeps it behind a mutex) and is
//! thrown away, killing the child, after any failure of the exchange itself: a timeout, a
//! death, a line that is not the reply. Nothing of a failed exchange can then leak into the
//! next one (a late reply read as the answer to another request).

use crate::protocol::{self, Op, Reply, Request};
use nsauth_store::StoreError;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use zeroize::Zeroize;

/// The longest line a plugin may write (records are a few KiB; the suite's largest ~40 KiB).
pub const MAX_LINE: usize = 4 * 1024 * 1024;

/// A running plugin.
pub(crate) struct Conn {
    /// Killed when the `Conn` is dropped (`kill_on_drop`).
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    /// `nsauth-store-NAME`, for messages.
    exe: String,
}

impl Conn {
    /// Starts `program` with no arguments and exactly the environment `env`.
    pub fn spawn(
        program: &Path,
        exe: &str,
        env: Vec<(String, std::ffi::OsString)>,
    ) -> Result<Conn, StoreError> {
        let mut child = Command::new(program)
            .env_clear()
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| StoreError::Unavailable {
                message: format!("cannot start store plugin {}: {e}", program.display()),
                retryable: false,
            })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            unreachable!("all three streams were requested as pipes");
        };
        tokio::spawn(forward_stderr(stderr, exe.to_owned()));
        Ok(Conn {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            next_id: 1,
            exe: exe.to_owned(),
        })
    }

    /// Sends `op` and reads its reply, all within `timeout`. An `Err` means this `Conn` is
    /// unusable (drop it); a plugin's own error reply is `Ok(Reply::Error)`.
    pub async fn exchange(&mut self, op: Op<'_>, timeout: Duration) -> Result<Reply, ConnError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_vec(&Request { id, op }).expect("requests serialise");
        line.push(b'\n');
        let result = tokio::time::timeout(timeout, self.round_trip(&line, id)).await;
        // The line may hold a record (sealed or, for encrypting plugins, plain).
        line.zeroize();
        let verb = op.verb();
        let error = match result {
            Ok(Ok(reply)) => return Ok(reply),
            Ok(Err(Failure::NotSent(e))) => {
                return Err(ConnError {
                    error: self.died(verb, &e.to_string()).await,
                    delivered: false,
                })
            }
            Ok(Err(Failure::Io(e))) => self.died(verb, &e.to_string()).await,
            Ok(Err(Failure::Eof)) => self.died(verb, "it closed its output").await,
            Ok(Err(Failure::Protocol(why))) => StoreError::Unavailable {
                message: format!(
                    "store plugin {} {why} during {verb}; it was stopped (see docs/plugins.md)",
                    self.exe
                ),
                retryable: false,
            },
            Err(_) => StoreError::Unavailable {
                message: format!(
                    "store plugin {} did not answer {verb} within {} ms; it was stopped and will be restarted on the next request",
                    self.exe,
                    timeout.as_millis()
                ),
                retryable: true,
            },
        };
        Err(ConnError {
            error,
            delivered: true,
        })
    }

    async fn round_trip(&mut self, line: &[u8], id: u64) -> Result<Reply, Failure> {
        // A line that could not be written never reached the plugin as a request (a partial
        // line is not valid JSON to it): the caller may start the plugin again and resend.
        self.stdin.write_all(line).await.map_err(Failure::NotSent)?;
        self.stdin.flush().await.map_err(Failure::NotSent)?;
        let mut buf = Vec::new();
        let read = read_line(&mut self.stdout, &mut buf).await;
        let reply = match read {
            Ok(()) => protocol::parse_reply(&buf, id).map_err(Failure::Protocol),
            Err(e) => Err(e),
        };
        buf.zeroize();
        reply
    }

    /// The error for a plugin that went away during `verb`, with its exit status when it
    /// has one within a moment.
    async fn died(&mut self, verb: &str, what: &str) -> StoreError {
        let _ = self.stdin.shutdown().await;
        let status = tokio::time::timeout(Duration::from_millis(200), self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        StoreError::Unavailable {
            message: format!(
                "store plugin {} failed during {verb}: {what}{status}; it will be restarted on the next request",
                self.exe
            ),
            retryable: true,
        }
    }
}

/// Why an exchange failed, and whether the request may have reached the plugin.
pub struct ConnError {
    pub error: StoreError,
    /// `false` when writing the request failed, so the plugin cannot have acted on it.
    pub delivered: bool,
}

impl From<ConnError> for StoreError {
    fn from(e: ConnError) -> Self {
        e.error
    }
}

enum Failure {
    /// Writing the request failed.
    NotSent(std::io::Error),
    Io(std::io::Error),
    Eof,
    Protocol(String),
}

/// Reads one line (without its newline) of at most [`MAX_LINE`] bytes.
async fn read_line<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    buf: &mut Vec<u8>,
) -> Result<(), Failure> {
    let mut limited = (&mut *r).take(MAX_LINE as u64 + 1);
    let n = limited.read_until(b'\n', buf).await.map_err(Failure::Io)?;
    if n == 0 {
        return Err(Failure::Eof);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(());
    }
    if buf.len() > MAX_LINE {
        return Err(Failure::Protocol(format!(
            "wrote a line longer than {} MiB",
            MAX_LINE / (1024 * 1024)
        )));
    }
    Err(Failure::Eof)
}

/// Copies the plugin's stderr to the log at debug level, a line at a time, until it closes.
async fn forward_stderr(stderr: tokio::process::ChildStderr, exe: String) {
    let mut r = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let mut limited = (&mut r).take(8 * 1024);
        match limited.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                tracing::debug!(plugin = %exe, "{}", protocol::first_line(&line, 1000));
            }
        }
    }
}
