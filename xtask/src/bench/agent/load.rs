//! Load on a Unix socket: a fixed rate (open loop), as fast as answers come (closed loop),
//! and a trivial responder to measure the machine's own floor with.

use super::conn::Conn;
use super::token_target;
use crate::bench::measure::{self, stats, Stats};
use std::path::Path;
use std::time::{Duration, Instant};

/// One connection's latencies (ms), errors and late sends.
type Leg = (Vec<f64>, usize, usize);

/// What a fixed-rate run saw: latencies (ms, send to whole answer), errors, sends more than
/// 1 ms behind schedule, and how long it took.
#[derive(Default)]
pub(super) struct Load {
    lat: Vec<f64>,
    errors: usize,
    late: usize,
    secs: f64,
}

impl Load {
    pub(super) fn add(&mut self, other: Load) {
        self.lat.extend(other.lat);
        self.errors += other.errors;
        self.late += other.late;
        self.secs += other.secs;
    }

    /// Latency stats, errors, late sends, achieved requests/s.
    pub(super) fn summary(&self) -> (Stats, usize, usize, f64) {
        let achieved = self.lat.len() as f64 / self.secs.max(f64::EPSILON);
        (stats(&self.lat), self.errors, self.late, achieved)
    }
}

/// `rate` requests/s for `secs` over 4 connections, each on its own schedule.
pub(super) fn fixed_rate(
    sock: &Path,
    rate: u64,
    secs: u64,
    profiles: usize,
) -> Result<Load, String> {
    const CONNS: u64 = 4;
    let per_conn = rate * secs / CONNS;
    let interval = Duration::from_secs_f64(CONNS as f64 / rate as f64);
    let start = Instant::now() + Duration::from_millis(100);
    let results: Vec<Result<Leg, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CONNS)
            .map(|k| {
                s.spawn(move || {
                    let mut c = Conn::unix(sock)?;
                    let (mut lat, mut errors, mut late) = (Vec::new(), 0, 0);
                    let offset = interval.mul_f64(k as f64 / CONNS as f64);
                    for i in 0..per_conn {
                        let at = start + offset + interval * i as u32;
                        let now = Instant::now();
                        if at > now {
                            std::thread::sleep(at - now);
                        } else if now - at > Duration::from_millis(1) {
                            late += 1;
                        }
                        let sent = Instant::now();
                        let p = (k * per_conn + i) as usize % profiles;
                        match c.get(&token_target(p), &[]) {
                            Ok((200, _)) => lat.push(measure::ms(sent.elapsed())),
                            _ => errors += 1,
                        }
                    }
                    Ok((lat, errors, late))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a load thread panicked".into()))
            })
            .collect()
    });
    let mut load = Load {
        secs: start.elapsed().as_secs_f64(),
        ..Load::default()
    };
    for r in results {
        let (lat, errors, late) = r?;
        load.add(Load {
            lat,
            errors,
            late,
            secs: 0.0,
        });
    }
    Ok(load)
}

/// A trivial responder on a Unix socket: a canned token-sized answer to every request, one
/// thread per connection. The same load against it shows what this machine allows now.
pub(super) fn floor_server(path: &Path) -> Result<(), String> {
    use std::io::{Read, Write};
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let body = format!(
        r#"{{"access_token":"{}","token_type":"Bearer","expires_at":"2030-01-01T00:00:00Z","account_id":"1234567_SB1","rest_url":"https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/"}}"#,
        "x".repeat(900)
    );
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = conn.read(&mut chunk) {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..i + 4);
                        if conn.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok(())
}

/// Requests/s `conns` connections get asking as fast as answers come, for `secs`.
pub(super) fn closed_loop(
    sock: &Path,
    secs: u64,
    conns: usize,
    profiles: usize,
) -> Result<f64, String> {
    let until = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let counts: Vec<Result<u64, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..conns)
            .map(|k| {
                s.spawn(move || {
                    let mut c = Conn::unix(sock)?;
                    let mut n = 0u64;
                    while Instant::now() < until {
                        let (status, _) =
                            c.get(&token_target((k + n as usize * conns) % profiles), &[])?;
                        if status != 200 {
                            return Err(format!("GET /v1/token answered {status}"));
                        }
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a load thread panicked".into()))
            })
            .collect()
    });
    let total: u64 = counts
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .sum();
    Ok(total as f64 / start.elapsed().as_secs_f64())
}
