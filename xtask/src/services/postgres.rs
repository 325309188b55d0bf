//! A throw-away PostgreSQL server for the `postgres://` store tests: Debian's server binaries
//! (`apt-get install postgresql` when missing), a data directory under /tmp, loopback TCP on a
//! free port with password (SCRAM) logins, the Unix socket inside the data directory.
//! PostgreSQL refuses to run as root, so as root everything runs as the `postgres` user.
//!
//! Two roles: `nsauth_test` (owner of database `nsauth_test`; what the store tests log in as,
//! its password exported as `PGPASSWORD`) and the superuser `postgres` (for tests that create
//! roles, password in `NSAUTH_TEST_POSTGRES_ADMIN_PASSWORD`).

use super::{dir, free_port, random_hex};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The file naming the running server's data directory, for `down`.
fn marker() -> PathBuf {
    dir().join("postgres-dir")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `bin` run as the `postgres` user when we are root.
fn as_postgres(bin: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

/// The newest `/usr/lib/postgresql/N/bin`.
fn find_bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

/// The server binaries, installing Debian's `postgresql` package if they are missing.
fn ensure_installed() -> Result<PathBuf, String> {
    if let Some(b) = find_bin_dir() {
        return Ok(b);
    }
    eprintln!("xtask: installing PostgreSQL (apt-get install postgresql)");
    let install = || {
        crate::run(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "postgresql"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    if install().is_err() {
        crate::run(Command::new("apt-get").arg("update"))?;
        install()?;
    }
    find_bin_dir().ok_or_else(|| {
        "apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb appeared".into()
    })
}

/// Writes `text` to `path`, 0600, owned by the user the server runs as.
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    if is_root() {
        check(Command::new("chown").arg("postgres").arg(path))?;
    }
    Ok(())
}

fn check(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Starts the server and returns the variables the tests need.
pub(super) fn up() -> Result<Vec<(String, String)>, String> {
    let bin = ensure_installed()?;
    let data = PathBuf::from(check(
        as_postgres(Path::new("mktemp")).args(["-d", "/tmp/nsauth-pg.XXXXXXXX"]),
    )?);
    std::fs::write(marker(), data.display().to_string()).map_err(|e| e.to_string())?;
    let admin_password = random_hex();
    let password = random_hex();
    // initdb reads the superuser's password from a file the postgres user can read.
    let pwfile = data.join("pw");
    write_private(&pwfile, &admin_password)?;
    let pgdata = data.join("data");
    check(
        as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&pgdata)
            .args([
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display())),
    )?;
    let _ = std::fs::remove_file(&pwfile);
    let port = free_port()?;
    let options = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=400 -c fsync=off -c synchronous_commit=off",
        data.display()
    );
    check(
        as_postgres(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&pgdata)
            .arg("-l")
            .arg(data.join("server.log"))
            .args(["-o", &options, "-w", "-t", "60", "start"]),
    )?;
    let sql = format!(
        "CREATE ROLE nsauth_test LOGIN PASSWORD '{password}'; CREATE DATABASE nsauth_test OWNER nsauth_test;"
    );
    for statement in sql.split_inclusive(';') {
        check(
            as_postgres(&bin.join("psql"))
                .args([
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                ])
                .arg("-h")
                .arg(&data)
                .args(["-p", &port.to_string(), "-c", statement.trim()]),
        )?;
    }
    eprintln!(
        "xtask: PostgreSQL on 127.0.0.1:{port} (data in {})",
        data.display()
    );
    Ok(vec![
        (
            "NSAUTH_TEST_POSTGRES".into(),
            format!("postgres://nsauth_test@127.0.0.1:{port}/nsauth_test?sslmode=disable"),
        ),
        ("PGPASSWORD".into(), password),
        (
            "NSAUTH_TEST_POSTGRES_ADMIN".into(),
            format!("postgres://postgres@127.0.0.1:{port}/nsauth_test?sslmode=disable"),
        ),
        ("NSAUTH_TEST_POSTGRES_ADMIN_PASSWORD".into(), admin_password),
        (
            "NSAUTH_TEST_PG_CTL".into(),
            bin.join("pg_ctl").display().to_string(),
        ),
        ("NSAUTH_TEST_PGDATA".into(), pgdata.display().to_string()),
    ])
}

/// Stops the server started by `up` and removes its directory.
pub(super) fn down() {
    let Ok(data) = std::fs::read_to_string(marker()) else {
        return;
    };
    let data = PathBuf::from(data.trim());
    if let Some(bin) = find_bin_dir() {
        let _ = as_postgres(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(data.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .output();
    }
    if data.starts_with("/tmp") && data.file_name().is_some() {
        let _ = std::fs::remove_dir_all(&data);
    }
    let _ = std::fs::remove_file(marker());
}
