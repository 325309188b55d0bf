//! `cargo xtask bench --only plugin` (and the end of a full `cargo xtask bench`): what a store
//! plugin costs on the hot path. A cached `nsauth token` on `plugin://pydir` (the example
//! Python plugin, `examples/plugins/python-dir`) against the same on `file://`, interleaved in
//! one go, with a Python interpreter's start beside them: that start is most of a plugin's
//! cost, since each `nsauth` process runs its own plugin.
//!
//! The plugin runs on the Python interpreter itself, found through `python3` and put first on
//! its `PATH`, so that a version manager's shim (pyenv's is a bash script) is not counted.

use super::measure::{self, stats, Case, Stats};
use super::run::{random_bytes, random_store_key, sandbox_env, start_emulator, Cleanup};
use super::{log, root, Sandbox, Store};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

const BEGIN: &str =
    "<!-- BEGIN cargo xtask bench plugin: generated, edits inside are overwritten -->";
const END: &str = "<!-- END cargo xtask bench plugin -->";

/// Sets up its own emulator and stores, measures, and writes its block into `out`.
pub(super) fn standalone(bin: &Path, runs: usize, out: &Path) -> Result<(), String> {
    let started = Instant::now();
    let mut cleanup = Cleanup::default();
    let run_id = hex::encode(random_bytes::<4>());
    let tmp = std::env::temp_dir().join(format!(
        "nsauth-bench-plugin-{}-{run_id}",
        std::process::id()
    ));
    std::fs::create_dir_all(tmp.join("home")).map_err(|e| e.to_string())?;
    cleanup.tmp = Some(tmp.clone());
    let sb = Arc::new(Sandbox {
        bin: bin.to_owned(),
        base_env: sandbox_env(&tmp.join("home"), random_store_key()),
    });
    let emu = start_emulator(&sb)?;
    let login = Login {
        base: emu.base.clone(),
        account: emu.account.clone(),
        client_id: emu.client_id.clone(),
        redirect: emu.redirect.clone(),
        email: emu.email.clone(),
        password: emu.password.clone(),
    };
    cleanup.emulator = Some(emu.child);

    let python = plain_python(&tmp)?;
    let path = format!(
        "{}:{}",
        python.parent().unwrap_or(Path::new("/")).display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let file = Store {
        label: "file",
        uri: format!("file://{}", tmp.join("file/profiles").display()),
        env: vec![],
    };
    let plugin = Store {
        label: "plugin://pydir",
        uri: format!("plugin://pydir/{}", tmp.join("pydir").display()),
        env: vec![
            (
                "NSAUTH_PLUGIN_PATH".into(),
                root()
                    .join("examples/plugins/python-dir")
                    .display()
                    .to_string(),
            ),
            ("PATH".into(), path.clone()),
        ],
    };
    for store in [&file, &plugin] {
        log(format!("plugin bench: logging in `hot` on {}", store.label));
        login.log_in(&sb, store, "hot")?;
        sb.ok(Some(store), &["--profile", "hot", "token"])?;
    }

    let load_before = super::machine::loadavg();
    let mut cases = vec![Case::new("python3 -c pass (interpreter start)", {
        let (python, path) = (python.clone(), path.clone());
        move || {
            let mut c = Command::new(&python);
            c.env_clear().env("PATH", &path).args(["-c", "pass"]);
            c
        }
    })];
    for store in [file, plugin] {
        let sb = sb.clone();
        cases.push(Case::new(
            format!("nsauth token ({}, cached)", store.label),
            move || {
                let mut c = sb.nsauth(Some(&store));
                c.args(["--profile", "hot", "token"]);
                c
            },
        ));
    }
    log(format!(
        "plugin bench: {} commands x {runs} runs, interleaved",
        cases.len()
    ));
    let samples = measure::interleaved(&cases, runs, 2)?;
    let rows: Vec<(String, Stats)> = cases
        .iter()
        .zip(&samples)
        .map(|(c, s)| (c.name.clone(), stats(s)))
        .collect();
    let report = render(
        bin,
        runs,
        &rows,
        &load_before,
        &super::machine::loadavg(),
        started.elapsed().as_secs_f64(),
    );
    eprintln!("{report}");
    super::render::write_block(out, BEGIN, END, &report)?;
    log(format!("wrote {}", out.display()));
    drop(cleanup);
    Ok(())
}

/// The emulator's login details.
struct Login {
    base: String,
    account: String,
    client_id: String,
    redirect: String,
    email: String,
    password: String,
}

impl Login {
    /// `profile set`, then `login start`, the browser, `login finish`.
    fn log_in(&self, sb: &Sandbox, store: &Store, name: &str) -> Result<(), String> {
        sb.ok(
            Some(store),
            &[
                "profile",
                "set",
                name,
                "--account-id",
                &self.account,
                "--client-id",
                &self.client_id,
                "--redirect-uri",
                &self.redirect,
                "--scope",
                "rest_webservices",
                "--base-url",
                &self.base,
            ],
        )?;
        let url = sb.ok(Some(store), &["--profile", name, "login", "start"])?;
        let url = url
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("http"))
            .ok_or_else(|| format!("login start printed no URL: {url}"))?;
        let landed = super::http::browser_login(url, &self.email, &self.password)?;
        sb.ok(
            Some(store),
            &["--profile", name, "login", "finish", &landed],
        )
        .map(|_| ())
    }
}

/// `tmp/bin/python3`, a link to the interpreter `python3` runs.
fn plain_python(tmp: &Path) -> Result<PathBuf, String> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .map_err(|e| format!("python3 is needed for the plugin bench: {e}"))?;
    let exe = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || exe.is_empty() {
        return Err("python3 did not say where its interpreter is".into());
    }
    let bin = tmp.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    let link = bin.join("python3");
    std::os::unix::fs::symlink(&exe, &link).map_err(|e| e.to_string())?;
    Ok(link)
}

/// The markdown block: the rows, then the overhead and the ratio.
fn render(
    bin: &Path,
    runs: usize,
    rows: &[(String, Stats)],
    load_before: &str,
    load_after: &str,
    took_s: f64,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Store plugin round trip\n");
    let _ = writeln!(
        s,
        "`{}`, {runs} runs per command, interleaved; load average {load_before} before, \
         {load_after} after; {took_s:.0} s.\n",
        bin.display()
    );
    let _ = writeln!(s, "| command | p50 ms | p99 ms | min ms | max ms |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for (name, st) in rows {
        let _ = writeln!(
            s,
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} |",
            st.median, st.p99, st.min, st.max
        );
    }
    let find = |label: &str| rows.iter().find(|(n, _)| n.contains(label)).map(|r| r.1);
    if let (Some(py), Some(file), Some(plugin)) =
        (find("python3"), find("(file,"), find("plugin://pydir"))
    {
        let _ = writeln!(
            s,
            "\nA cached `nsauth token` through `plugin://pydir` costs **{:+.1} ms** at p50 \
             ({:+.1} ms at p99) over `file://`, **×{:.2}** its time; a Python interpreter's \
             start is {:.1} ms of that. The plugin starts once per `nsauth` process, so a \
             long-lived caller (`nsauth serve`, the library) pays it once.",
            plugin.median - file.median,
            plugin.p99 - file.p99,
            plugin.median / file.median,
            py.median
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_gives_the_overhead_and_the_ratio() {
        let st = |median| Stats {
            median,
            min: median,
            max: median,
            p99: median * 2.0,
        };
        let rows = vec![
            ("python3 -c pass (interpreter start)".to_owned(), st(15.0)),
            ("nsauth token (file, cached)".to_owned(), st(4.0)),
            ("nsauth token (plugin://pydir, cached)".to_owned(), st(24.0)),
        ];
        let r = render(Path::new("nsauth"), 7, &rows, "1.0", "1.1", 3.0);
        assert!(
            r.contains("| nsauth token (file, cached) | 4.0 | 8.0 |"),
            "{r}"
        );
        assert!(r.contains("**+20.0 ms** at p50 (+40.0 ms at p99)"), "{r}");
        assert!(
            r.contains("**×6.00**") && r.contains("start is 15.0 ms"),
            "{r}"
        );
    }
}
