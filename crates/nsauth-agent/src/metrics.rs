//! What `/metrics` (Prometheus text format) and `/healthz` report: per profile the seconds
//! left on the access token, the refresh token and the certificate; refreshes and failures
//! by kind; proxy requests by status; store latency. Counters are updated by the token
//! cache, the refresher and the proxy ([`Metrics::proxy_status`]).

use nsauth_core::broker::Outcome;
use nsauth_core::Error;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use time::OffsetDateTime;

/// Upper bounds of the store latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// The agent's counters and gauges. Cheap to update; rendered on demand.
#[derive(Debug, Default)]
pub struct Metrics {
    profiles: Mutex<BTreeMap<String, ProfileStats>>,
    latency: Mutex<Histogram>,
    /// Token requests answered from memory.
    pub served_from_cache: AtomicU64,
    /// Token requests that went to the broker.
    pub served_from_broker: AtomicU64,
    /// Token requests answered with an error.
    pub served_errors: AtomicU64,
}

#[derive(Debug, Default)]
struct ProfileStats {
    access_expires_at: Option<OffsetDateTime>,
    refresh_expires_at: Option<OffsetDateTime>,
    certificate_not_after: Option<OffsetDateTime>,
    refreshes: BTreeMap<&'static str, u64>,
    failures: BTreeMap<&'static str, u64>,
    proxy: BTreeMap<u16, u64>,
    /// The last error, while the profile is unhealthy: (kind, message, exit code).
    unhealthy: Option<(&'static str, String, i32)>,
}

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; LATENCY_BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// A profile that could not get a token the last time it tried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unhealthy {
    /// The profile.
    pub profile: String,
    /// The error kind (as in the token route's `error`).
    pub error: &'static str,
    /// One line saying what to do.
    pub message: String,
    /// The CLI exit code.
    pub exit_code: i32,
}

impl Metrics {
    fn with<R>(&self, profile: &str, f: impl FnOnce(&mut ProfileStats) -> R) -> R {
        let mut all = self.profiles.lock().unwrap_or_else(|p| p.into_inner());
        f(all.entry(profile.to_owned()).or_default())
    }

    /// The profile is served: it shows up even before its first token.
    pub fn register(&self, profile: &str) {
        self.with(profile, |_| ());
    }

    /// Only these profiles stay listed (after a reload).
    pub fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        let mut all = self.profiles.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|name, _| keep(name));
    }

    /// A token was obtained: the lifetimes shown, the profile healthy again.
    pub fn token(
        &self,
        profile: &str,
        access_expires_at: OffsetDateTime,
        refresh_expires_at: Option<OffsetDateTime>,
        certificate_not_after: Option<OffsetDateTime>,
    ) {
        self.with(profile, |s| {
            s.access_expires_at = Some(access_expires_at);
            s.refresh_expires_at = refresh_expires_at;
            s.certificate_not_after = certificate_not_after;
            s.unhealthy = None;
        });
    }

    /// A broker call ended with `outcome` (`refreshed` by this agent, `waited` for another
    /// process's refresh, or `cached` in the store).
    pub fn refresh(&self, profile: &str, outcome: Outcome) {
        let kind = match outcome {
            Outcome::Refreshed => "refreshed",
            Outcome::Waited => "waited",
            Outcome::Cached => "cached",
        };
        self.with(profile, |s| *s.refreshes.entry(kind).or_default() += 1);
    }

    /// A broker call failed.
    pub fn failure(&self, profile: &str, e: &Error) {
        let (kind, _, code) = crate::reply::classify(e);
        let message = crate::reply::one_line(&e.to_string());
        self.with(profile, |s| {
            *s.failures.entry(kind).or_default() += 1;
            s.unhealthy = Some((kind, message, code));
        });
    }

    /// A proxied request of `profile` was answered with `status` (for the proxy).
    pub fn proxy_status(&self, profile: &str, status: u16) {
        self.with(profile, |s| *s.proxy.entry(status).or_default() += 1);
    }

    /// One store call took `took`.
    pub fn store_latency(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let mut h = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// The profiles whose last attempt failed.
    pub fn unhealthy(&self) -> Vec<Unhealthy> {
        let all = self.profiles.lock().unwrap_or_else(|p| p.into_inner());
        all.iter()
            .filter_map(|(name, s)| {
                s.unhealthy
                    .as_ref()
                    .map(|(error, message, code)| Unhealthy {
                        profile: name.clone(),
                        error,
                        message: message.clone(),
                        exit_code: *code,
                    })
            })
            .collect()
    }

    /// The number of profiles listed.
    pub fn profile_count(&self) -> usize {
        self.profiles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn render(&self, now: OffsetDateTime) -> String {
        let mut out = String::with_capacity(4096);
        let all = self.profiles.lock().unwrap_or_else(|p| p.into_inner());
        let left = |at: Option<OffsetDateTime>| at.map(|t| (t - now).whole_seconds());
        gauge(
            &mut out,
            "nsauth_agent_access_token_seconds_left",
            "Seconds until the profile's access token expires (negative: expired).",
            all.iter()
                .filter_map(|(n, s)| left(s.access_expires_at).map(|v| (n, v))),
        );
        gauge(
            &mut out,
            "nsauth_agent_refresh_token_seconds_left",
            "Seconds until the profile's refresh token (or its chain) ends.",
            all.iter()
                .filter_map(|(n, s)| left(s.refresh_expires_at).map(|v| (n, v))),
        );
        gauge(
            &mut out,
            "nsauth_agent_certificate_seconds_left",
            "Seconds until the profile's M2M certificate expires (notAfter).",
            all.iter()
                .filter_map(|(n, s)| left(s.certificate_not_after).map(|v| (n, v))),
        );
        gauge(
            &mut out,
            "nsauth_agent_profile_healthy",
            "1 when the profile's last token attempt succeeded, else 0.",
            all.iter()
                .map(|(n, s)| (n, i64::from(s.unhealthy.is_none()))),
        );
        let _ = writeln!(out, "# HELP nsauth_agent_refreshes_total Broker calls by outcome: refreshed (by this agent), waited (another process refreshed), cached.\n# TYPE nsauth_agent_refreshes_total counter");
        for (n, s) in all.iter() {
            for (kind, v) in &s.refreshes {
                let _ = writeln!(
                    out,
                    "nsauth_agent_refreshes_total{{profile=\"{}\",outcome=\"{kind}\"}} {v}",
                    label(n)
                );
            }
        }
        let _ = writeln!(out, "# HELP nsauth_agent_refresh_failures_total Failed broker calls by kind.\n# TYPE nsauth_agent_refresh_failures_total counter");
        for (n, s) in all.iter() {
            for (kind, v) in &s.failures {
                let _ = writeln!(
                    out,
                    "nsauth_agent_refresh_failures_total{{profile=\"{}\",kind=\"{kind}\"}} {v}",
                    label(n)
                );
            }
        }
        let _ = writeln!(out, "# HELP nsauth_agent_proxy_requests_total Proxied requests by response status.\n# TYPE nsauth_agent_proxy_requests_total counter");
        for (n, s) in all.iter() {
            for (status, v) in &s.proxy {
                let _ = writeln!(
                    out,
                    "nsauth_agent_proxy_requests_total{{profile=\"{}\",status=\"{status}\"}} {v}",
                    label(n)
                );
            }
        }
        drop(all);
        let _ = writeln!(out, "# HELP nsauth_agent_token_requests_total Token requests by how they were answered.\n# TYPE nsauth_agent_token_requests_total counter");
        for (src, c) in [
            ("cache", &self.served_from_cache),
            ("broker", &self.served_from_broker),
            ("error", &self.served_errors),
        ] {
            let _ = writeln!(
                out,
                "nsauth_agent_token_requests_total{{source=\"{src}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let h = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "# HELP nsauth_agent_store_latency_seconds Time of the agent's store reads.\n# TYPE nsauth_agent_store_latency_seconds histogram");
        for (le, c) in LATENCY_BUCKETS.iter().zip(h.counts.iter()) {
            let _ = writeln!(
                out,
                "nsauth_agent_store_latency_seconds_bucket{{le=\"{le}\"}} {c}"
            );
        }
        let _ = writeln!(
            out,
            "nsauth_agent_store_latency_seconds_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "nsauth_agent_store_latency_seconds_sum {}", h.sum);
        let _ = writeln!(out, "nsauth_agent_store_latency_seconds_count {}", h.count);
        out
    }
}

fn gauge<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    rows: impl Iterator<Item = (&'a String, i64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (profile, v) in rows {
        let _ = writeln!(out, "{name}{{profile=\"{}\"}} {v}", label(profile));
    }
}

/// A label value escaped as the text format asks.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_per_profile_lifetimes_and_counters() {
        let m = Metrics::default();
        let now = OffsetDateTime::now_utc();
        m.register("idle");
        m.token(
            "prod",
            now + time::Duration::seconds(600),
            Some(now + time::Duration::hours(2)),
            None,
        );
        m.refresh("prod", Outcome::Refreshed);
        m.proxy_status("prod", 200);
        m.proxy_status("prod", 200);
        m.failure("bad", &Error::LoginNeeded("run nsauth login".into()));
        m.store_latency(Duration::from_millis(3));
        let text = m.render(now);
        for line in [
            "nsauth_agent_access_token_seconds_left{profile=\"prod\"} 600",
            "nsauth_agent_refresh_token_seconds_left{profile=\"prod\"} 7200",
            "nsauth_agent_refreshes_total{profile=\"prod\",outcome=\"refreshed\"} 1",
            "nsauth_agent_proxy_requests_total{profile=\"prod\",status=\"200\"} 2",
            "nsauth_agent_refresh_failures_total{profile=\"bad\",kind=\"login_needed\"} 1",
            "nsauth_agent_profile_healthy{profile=\"bad\"} 0",
            "nsauth_agent_profile_healthy{profile=\"idle\"} 1",
            "nsauth_agent_store_latency_seconds_bucket{le=\"0.005\"} 1",
            "nsauth_agent_store_latency_seconds_bucket{le=\"0.0025\"} 0",
            "nsauth_agent_store_latency_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        let sick = m.unhealthy();
        assert_eq!(sick.len(), 1);
        assert_eq!((sick[0].profile.as_str(), sick[0].exit_code), ("bad", 3));
        m.token("bad", now, None, None);
        assert!(m.unhealthy().is_empty(), "a success heals");
    }
}
