//! The main section of `docs/benchmarks.md` (the storms' section is rendered by
//! `storms_report`), its storms header, and the marked blocks the bench rewrites.

use super::machine::Machine;
use super::measure::Stats;
use super::run::Store;
use super::targets::{find_hot, verdict};
use super::{http, storms, Opts, Results};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

fn fmt_stats(s: &Stats) -> String {
    format!("{:.2} | {:.2} | {:.2}", s.median, s.min, s.max)
}

/// The main section of `docs/benchmarks.md`.
pub(super) fn render(
    opts: &Opts,
    m: &Machine,
    version: &str,
    stores: &[Store],
    res: &Results,
    took: Duration,
) -> String {
    let mut d = String::new();
    let w = &mut d;
    header(w, opts, m, version, stores, res, took);
    targets_and_hot(w, res);
    memory(w, res);
    scale(w, opts, res);
    startup(w, res);
    d
}

/// When, what, on which machine; the stores, skipped ones and notes.
fn header(
    w: &mut String,
    opts: &Opts,
    m: &Machine,
    version: &str,
    stores: &[Store],
    res: &Results,
    took: Duration,
) {
    let _ = writeln!(w, "## Last run\n");
    let _ = writeln!(
        w,
        "{}, {} (`cargo xtask bench{}`; {} interleaved runs per command after 2 warm-up rounds, \
         {} storm(s) per size and store, {} ms simulated NetSuite latency on refresh; the whole \
         bench took {:.0} s).\n",
        m.date,
        version,
        if opts.quick { " --quick" } else { "" },
        opts.runs,
        opts.storm_reps,
        opts.refresh_delay_ms,
        took.as_secs_f64()
    );
    let _ = writeln!(w, "| Machine | |\n|---|---|");
    let _ = writeln!(w, "| CPU | {} |", m.cpu);
    let _ = writeln!(w, "| Cores | {} |", m.cores);
    let _ = writeln!(w, "| RAM | {:.1} GiB |", m.ram_gib);
    let _ = writeln!(w, "| Kernel | Linux {} |", m.kernel);
    let _ = writeln!(w, "| rustc | {} |", m.rustc);
    let _ = writeln!(
        w,
        "| Load average (1/5/15 min) | {} before, {} after |\n",
        m.load_before, m.load_after
    );
    let _ = writeln!(
        w,
        "Stores: {}.",
        stores
            .iter()
            .map(|s| format!("`{}`", s.label))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for s in &res.skipped {
        let _ = writeln!(w, "\n- {s}");
    }
    for n in &res.notes {
        let _ = writeln!(w, "\n- Note: {n}");
    }
}

/// The targets and the hot-path table.
fn targets_and_hot(w: &mut String, res: &Results) {
    let _ = writeln!(
        w,
        "\n### Targets\n\n| Target | Measured | Result |\n|---|---|---|"
    );
    for (what, got, ok) in &res.targets {
        let _ = writeln!(w, "| {what} | {got} | {} |", ok.map_or("n/a", verdict));
    }

    let _ = writeln!(
        w,
        "\n### Hot path: one whole process, cached token\n\nWall time from spawn to exit, ms; \
         all commands interleaved round-robin in the same go. \
         Token-endpoint calls during these runs: {} (all from cache).\n",
        res.hot_refreshes
    );
    let _ = writeln!(
        w,
        "| Command | median | min | max | median / floor |\n|---|---|---|---|---|"
    );
    let floor = find_hot(res, "nsauth --version").map_or(f64::NAN, |s| s.median);
    for (name, s) in &res.hot {
        let _ = writeln!(
            w,
            "| {name} | {} | {:.2}× |",
            fmt_stats(s),
            s.median / floor
        );
    }
}

/// Peak memory, and the pointer to the storms' own section.
fn memory(w: &mut String, res: &Results) {
    let _ = writeln!(
        w,
        "\n### Peak memory (max RSS, GNU time's wait4 ru_maxrss)\n"
    );
    if let Some(n) = &res.rss_note {
        let _ = writeln!(w, "{n}");
    } else {
        let _ = writeln!(
            w,
            "| Command | median MiB | min | max | minor page faults (median) |\n|---|---|---|---|---|"
        );
        for (name, s, f) in &res.rss {
            let _ = writeln!(
                w,
                "| {name} | {:.1} | {:.1} | {:.1} | {:.0} |",
                s.median, s.min, s.max, f.median
            );
        }
    }

    let _ = writeln!(
        w,
        "\n### Refresh storms\n\nIn their own section below (`cargo xtask bench --only storms` \
         rewrites it alone)."
    );
}

/// Scale: list and status with many profiles.
fn scale(w: &mut String, opts: &Opts, res: &Results) {
    let _ = writeln!(
        w,
        "\n### Scale\n\nProfiles created with `nsauth profile set` (4 processes at a time; \
         profiles without tokens), then `profile list` and `status --all --json` timed \
         (interleaved, {} runs), ms.\n",
        if opts.quick { 3 } else { 5 }
    );
    let _ = writeln!(
        w,
        "| Store | profiles | command | median | min | max | creation (all profiles) |\n|---|---|---|---|---|---|---|"
    );
    for r in &res.scale {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {:.1} s ({:.1} ms/profile) |",
            r.store,
            r.profiles,
            r.what,
            fmt_stats(&r.stats),
            r.create_s,
            r.create_s * 1000.0 / r.profiles as f64
        );
    }
    if let Some((bytes, n)) = res.sqlite_bytes {
        let _ = writeln!(
            w,
            "\nSQLite: {bytes} bytes for {n} profiles (database + WAL) = **{:.0} bytes per profile**.",
            bytes as f64 / n as f64
        );
    }
}

/// Startup: binary, callgrind and strace.
fn startup(w: &mut String, res: &Results) {
    let _ = writeln!(w, "\n### Startup: where a cached `token` goes (sqlite)\n");
    if !res.binary.is_empty() {
        let _ = writeln!(w, "The binary (`readelf -d`):\n\n```");
        for l in &res.binary {
            let _ = writeln!(w, "{l}");
        }
        let _ = writeln!(w, "```\n");
    }
    if !res.callgrind.is_empty() {
        let _ = writeln!(
            w,
            "Instructions executed (valgrind callgrind, whole process):\n\n| Command | instructions |\n|---|---|"
        );
        for (name, ir) in &res.callgrind {
            let _ = writeln!(w, "| {name} | {} |", group_digits(*ir));
        }
        let _ = writeln!(
            w,
            "\nTop functions of `token` by inclusive instructions (callgrind_annotate --inclusive=yes):\n\n```"
        );
        for l in &res.callgrind_incl {
            let _ = writeln!(w, "{l}");
        }
        let _ = writeln!(w, "```\n\nTop functions by self instructions:\n\n```");
        for l in &res.callgrind_self {
            let _ = writeln!(w, "{l}");
        }
        let _ = writeln!(w, "```");
        for (name, lines) in &res.callgrind_remote {
            let _ = writeln!(
                w,
                "\nTop functions of `{name}` by inclusive instructions (runtime and loader frames left out):\n\n```"
            );
            for l in lines {
                let _ = writeln!(w, "{l}");
            }
            let _ = writeln!(w, "```");
        }
    }
    if !res.strace_timeline.is_empty() {
        let _ = writeln!(
            w,
            "\nBefore the first store read (`strace -f -ttt`, file, network, process calls; \
             each path once):\n\n```"
        );
        for l in &res.strace_timeline {
            let _ = writeln!(w, "{l}");
        }
        let _ = writeln!(w, "```");
    }
    if !res.strace_summary.is_empty() {
        let _ = writeln!(
            w,
            "\nSyscalls of one `token` (`strace -f -c -S calls`):\n\n```"
        );
        for l in &res.strace_summary {
            let _ = writeln!(w, "{l}");
        }
        let _ = writeln!(w, "```");
    }
}

pub(super) fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(super) fn summary_text(res: &Results) -> String {
    let mut s = String::from("targets:\n");
    for (what, got, ok) in &res.targets {
        let _ = writeln!(s, "  [{}] {what}: {got}", ok.map_or("n/a", verdict));
    }
    s
}

/// The storms section's first paragraph: when, what, on which machine.
pub(super) fn storms_header(
    opts: &Opts,
    m: &Machine,
    version: &str,
    res: &Results,
    took: Duration,
) -> String {
    let mut h = format!(
        "{}, {version} (`cargo xtask bench{}`; {} storm(s) per size, store and binary; {} ms \
         simulated NetSuite latency on refresh; the run took {:.0} s). Machine: {} cores, load \
         average (1/5/15 min) {} before, {} after. N concurrent `nsauth token --min-ttl {}` \
         processes, released together by a barrier, on a profile whose access token nsauth was \
         told lives {} s (so all of them find it expiring).",
        m.date,
        if opts.only_storms {
            " --only storms"
        } else {
            ""
        },
        opts.storm_reps,
        opts.refresh_delay_ms,
        took.as_secs_f64(),
        m.cores,
        m.load_before,
        m.load_after,
        storms::STORM_MIN_TTL,
        http::SHORT_TTL,
    );
    if opts.before_bin.is_some() {
        h.push_str(
            " Binary `this` is the nsauth under test; `before` is the `--before-bin` nsauth, \
             run on its own profiles in the same go (interleaved per run).",
        );
    }
    for n in &res.notes {
        h.push_str(&format!(" Note: {n}."));
    }
    h
}

/// Writes `generated` between the markers `begin` and `end`, keeping the text around them
/// (appended at the end when the markers are missing).
pub(super) fn write_block(
    path: &Path,
    begin: &str,
    end: &str,
    generated: &str,
) -> Result<(), String> {
    let block = format!("{begin}\n\n{generated}\n{end}\n");
    let text = match std::fs::read_to_string(path) {
        Ok(old) => match (old.find(begin), old.find(end)) {
            (Some(b), Some(e)) if e > b => {
                let after = &old[e + end.len()..];
                format!("{}{block}\n{}", &old[..b], after.trim_start_matches('\n'))
            }
            _ => format!("{}\n\n{block}", old.trim_end()),
        },
        Err(_) => format!(
            "# Benchmarks\n\n`cargo xtask bench` measures the release `nsauth` binary as whole \
             processes and rewrites the sections below.\n\n{block}"
        ),
    };
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(1234567), "1,234,567");
        assert_eq!(group_digits(123), "123");
    }
}
