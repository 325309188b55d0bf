//! Runs `nsauth` processes that the campaign may SIGKILL at any moment: each running
//! process is registered with its operation and slot, and killed only through its own
//! `Child` handle (never by a pid that might have been reused).

use super::history::Outcome;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One running process.
#[derive(Debug)]
pub struct Proc {
    pub op: usize,
    pub slot: usize,
    child: Mutex<Child>,
    killed: AtomicBool,
}

/// The processes running now.
#[derive(Debug, Default)]
pub struct Registry {
    procs: Mutex<Vec<Arc<Proc>>>,
}

impl Registry {
    /// SIGKILLs the `pick`-th running process (modulo their number); its (op, slot).
    pub fn kill(&self, pick: u64) -> Option<(usize, usize)> {
        let procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        if procs.is_empty() {
            return None;
        }
        let p = &procs[(pick % procs.len() as u64) as usize];
        p.killed.store(true, Ordering::SeqCst);
        // `Child::kill` sends nothing to a child already reaped.
        let _ = p.child.lock().unwrap_or_else(|e| e.into_inner()).kill();
        Some((p.op, p.slot))
    }

    fn remove(&self, p: &Arc<Proc>) {
        self.procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|q| !Arc::ptr_eq(p, q));
    }
}

/// What one process did.
#[derive(Debug)]
pub struct Ran {
    pub outcome: Outcome,
    pub stdout: String,
    pub stderr: String,
}

fn drain(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut s);
        }
        String::from_utf8_lossy(&s).into_owned()
    })
}

/// Runs `cmd` to its end (or `deadline`, then kills it), with stdin from `input`.
pub fn run(
    reg: &Registry,
    op: usize,
    slot: usize,
    mut cmd: Command,
    input: Option<&str>,
    deadline: Duration,
) -> Ran {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Ran {
                outcome: Outcome::Failed(format!("cannot start nsauth: {e}")),
                stdout: String::new(),
                stderr: String::new(),
            }
        }
    };
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        use std::io::Write;
        let _ = stdin.write_all(text.as_bytes());
    }
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let p = Arc::new(Proc {
        op,
        slot,
        child: Mutex::new(child),
        killed: AtomicBool::new(false),
    });
    reg.procs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(p.clone());
    let until = Instant::now() + deadline;
    let mut hung = false;
    let status = loop {
        {
            let mut c = p.child.lock().unwrap_or_else(|e| e.into_inner());
            match c.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() >= until => {
                    hung = true;
                    let _ = c.kill();
                }
                Ok(None) => {}
                Err(_) => break None,
            }
        }
        std::thread::sleep(Duration::from_millis(15));
    };
    reg.remove(&p);
    let (stdout, stderr) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    // A process that exited on its own keeps its exit code even if a kill raced with it.
    let outcome = match status.and_then(|s| s.code()) {
        Some(c) => Outcome::Exit(c),
        None if hung => Outcome::Hung,
        None if p.killed.load(Ordering::SeqCst) => Outcome::Killed,
        None => Outcome::Failed("ended by a signal the campaign did not send".into()),
    };
    Ran {
        outcome,
        stdout,
        stderr,
    }
}
