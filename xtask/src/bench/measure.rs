//! Whole-process timings: interleaved runs, statistics, peak RSS, concurrent storms.

use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// A command to time; `make` builds a fresh `Command` for each run.
pub struct Case {
    pub name: String,
    pub make: Box<dyn Fn() -> Command>,
}

impl Case {
    pub fn new(name: impl Into<String>, make: impl Fn() -> Command + 'static) -> Self {
        Self {
            name: name.into(),
            make: Box::new(make),
        }
    }
}

/// Summary of a sample, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub p99: f64,
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn stats(values: &[f64]) -> Stats {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return Stats::default();
    }
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Stats {
        median,
        min: v[0],
        max: v[n - 1],
        p99: percentile(&v, 99.0),
    }
}

/// Runs the command once, output discarded; an error (with its stderr) if it fails.
pub fn time_once(mut cmd: Command) -> Result<Duration, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let took = start.elapsed();
    check(&cmd, &out)?;
    Ok(took)
}

pub fn check(cmd: &Command, out: &Output) -> Result<(), String> {
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} {:?} failed with {}: {}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs every case `runs` times, round-robin (the starting case rotates each round) so that
/// the machine's slow and fast moments fall on all cases alike, after `warmup` rounds that
/// are thrown away. Returns the durations in milliseconds, per case.
pub fn interleaved(cases: &[Case], runs: usize, warmup: usize) -> Result<Vec<Vec<f64>>, String> {
    let mut out = vec![Vec::with_capacity(runs); cases.len()];
    for round in 0..warmup + runs {
        for k in 0..cases.len() {
            let i = (k + round) % cases.len();
            let d = time_once((cases[i].make)())?;
            if round >= warmup {
                out[i].push(ms(d));
            }
        }
    }
    Ok(out)
}

/// `true` when `/usr/bin/time` is GNU time (it reports the child's peak RSS from wait4).
pub fn have_gnu_time() -> bool {
    Command::new("/usr/bin/time")
        .args(["-f", "%M", "true"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stderr)
                    .trim()
                    .parse::<u64>()
                    .is_ok()
        })
}

/// Peak RSS (KiB) and minor page faults of one run of `cmd`, via GNU time's `%M` and `%R`
/// (wait4's ru_maxrss and ru_minflt of the child).
pub fn rusage(cmd: Command) -> Result<(u64, u64), String> {
    let mut t = Command::new("/usr/bin/time");
    t.args(["-f", "@@rusage=%M %R"]).arg(cmd.get_program());
    t.args(cmd.get_args());
    t.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            t.env(k, v);
        }
    }
    t.stdin(Stdio::null()).stdout(Stdio::null());
    let out = t.output().map_err(|e| format!("cannot run {t:?}: {e}"))?;
    check(&t, &out)?;
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .filter_map(|l| l.trim().strip_prefix("@@rusage="))
        .next_back()
        .and_then(|v| {
            let mut it = v.split_whitespace().map(|n| n.parse().ok());
            Some((it.next()??, it.next()??))
        })
        .ok_or_else(|| format!("GNU time printed no rusage: {err}"))
}

/// Removes ANSI colour sequences (tracing's log lines are coloured).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One process of a storm.
pub struct StormRun {
    /// When this process was spawned (all within a moment of the barrier's release).
    pub start: Instant,
    pub latency_ms: f64,
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Starts `n` processes at once (one thread each, released together by a barrier) and
/// returns each one's wall time from its spawn to its exit.
pub fn storm(n: usize, make: &(dyn Fn() -> Command + Sync)) -> Vec<StormRun> {
    let barrier = Arc::new(Barrier::new(n));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let mut cmd = make();
                let barrier = barrier.clone();
                s.spawn(move || {
                    cmd.stdin(Stdio::null())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped());
                    barrier.wait();
                    let start = Instant::now();
                    let out = cmd.output();
                    let latency_ms = ms(start.elapsed());
                    match out {
                        Ok(o) => StormRun {
                            start,
                            latency_ms,
                            ok: o.status.success(),
                            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                            stderr: strip_ansi(&String::from_utf8_lossy(&o.stderr)),
                        },
                        Err(e) => StormRun {
                            start,
                            latency_ms,
                            ok: false,
                            stdout: String::new(),
                            stderr: e.to_string(),
                        },
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| StormRun {
                    start: Instant::now(),
                    latency_ms: f64::NAN,
                    ok: false,
                    stdout: String::new(),
                    stderr: "thread panicked".into(),
                })
            })
            .collect()
    })
}

/// Runs `count` jobs on `workers` threads; `job(i)` for i in 0..count. Returns the first error.
pub fn parallel(
    count: usize,
    workers: usize,
    job: &(dyn Fn(usize) -> Result<(), String> + Sync),
) -> Result<(), String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let err: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                if err.lock().map(|e| e.is_some()).unwrap_or(true) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    return;
                }
                if let Err(e) = job(i) {
                    if let Ok(mut slot) = err.lock() {
                        slot.get_or_insert(e);
                    }
                    return;
                }
            });
        }
    });
    match err.into_inner() {
        Ok(Some(e)) => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics() {
        let s = stats(&[3.0, 1.0, 2.0, 10.0]);
        assert_eq!((s.median, s.min, s.max, s.p99), (2.5, 1.0, 10.0, 10.0));
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(stats(&v).p99, 198.0);
        assert_eq!(
            strip_ansi("\u{1b}[3moutcome\u{1b}[0m\u{1b}[2m=\u{1b}[0mRefreshed"),
            "outcome=Refreshed"
        );
    }
}
