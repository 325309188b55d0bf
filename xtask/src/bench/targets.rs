//! The targets of the benchmark issue, checked against the measurements.

use super::measure::Stats;
use super::Results;

/// Targets (from the benchmark issue).
const LOCAL_FLOOR_RATIO: f64 = 2.0;
const VAULT_BAO_RATIO: f64 = 0.1;
const AWS_CLI_RATIO: f64 = 0.05;
const MAX_RSS_MIB: f64 = 25.0;
const STATUS_ALL_MS: f64 = 1000.0;

pub(super) fn find_hot<'a>(res: &'a Results, prefix: &str) -> Option<&'a Stats> {
    res.hot
        .iter()
        .find(|(n, _)| n.starts_with(prefix))
        .map(|(_, s)| s)
}

pub(super) fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

/// Checks the measurements against the targets.
pub(super) fn targets(res: &mut Results) {
    let mut t = Vec::new();
    let floor = find_hot(res, "nsauth --version").copied();
    for label in ["sqlite", "file"] {
        if let (Some(f), Some(s)) = (floor, find_hot(res, &format!("nsauth token ({label}"))) {
            let r = s.median / f.median;
            t.push((
                format!("`token` on {label} ≤ {LOCAL_FLOOR_RATIO}× the process floor"),
                format!("{:.2} ms vs {:.2} ms = **{r:.2}×**", s.median, f.median),
                Some(r <= LOCAL_FLOOR_RATIO),
            ));
        }
    }
    for (label, base, limit) in [
        ("vault", "bao kv get", VAULT_BAO_RATIO),
        ("aws-sm", "aws secretsmanager", AWS_CLI_RATIO),
    ] {
        match (
            find_hot(res, &format!("nsauth token ({label}")),
            find_hot(res, base),
        ) {
            (Some(s), Some(b)) => {
                let r = s.median / b.median;
                t.push((
                    format!("`token` on {label} ≤ {limit}× `{base}`"),
                    format!("{:.2} ms vs {:.2} ms = **{r:.3}×**", s.median, b.median),
                    Some(r <= limit),
                ));
            }
            (Some(_), None) => t.push((
                format!("`token` on {label} ≤ {limit}× `{base}`"),
                "baseline not available".into(),
                None,
            )),
            _ => {}
        }
    }
    for (name, s, _) in &res.rss {
        if name.starts_with("nsauth token") {
            t.push((
                format!("peak RSS of {name} ≤ {MAX_RSS_MIB} MiB"),
                format!("max {:.1} MiB (median {:.1})", s.max, s.median),
                Some(s.max <= MAX_RSS_MIB),
            ));
        }
    }
    if let Some(row) = res
        .scale
        .iter()
        .find(|r| r.store == "sqlite" && r.what.starts_with("status"))
    {
        let note = if row.profiles < 10_000 {
            format!(" (with {} profiles, not 10 000)", row.profiles)
        } else {
            String::new()
        };
        t.push((
            format!("`status --all --json` on sqlite with 10 000 profiles ≤ 1 s{note}"),
            format!(
                "median {:.0} ms, max {:.0} ms",
                row.stats.median, row.stats.max
            ),
            Some(row.stats.median <= STATUS_ALL_MS),
        ));
    }
    res.targets = t;
}
