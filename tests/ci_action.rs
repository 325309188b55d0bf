//! The CI integration's script (`.github/actions/nsauth/run.sh`, also what the GitLab template
//! runs), run as GitHub Actions and GitLab CI would: fake `GITHUB_ENV` / `GITHUB_OUTPUT`
//! files, a local stand-in for GitHub's OIDC token endpoint, OpenBao's JWT auth and the
//! NetSuite emulator. Needs `cargo xtask services up`.

#[path = "../crates/nsauth-store-vault/tests/common/oidc.rs"]
mod oidc;

use nsauth_e2e::*;
use oidc::{Issuer, Root};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;

const AUD: &str = "https://github.com/acme";
const REQUEST_TOKEN: &str = "actions-id-token-request-3f9a";

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.github/actions/nsauth/run.sh")
}

/// OpenBao with JWT auth for `acme/app` on a fresh prefix, a profile logged in there, and
/// GitHub's OIDC endpoint stand-in.
struct World {
    emu: nsauth_emulator::Emulator,
    issuer: Arc<Issuer>,
    mount: String,
    store_uri: String,
    oidc_url: String,
    oidc_asked: Arc<std::sync::atomic::AtomicUsize>,
    /// Set-up sandbox (its JWT file is the issuer's).
    setup: Sandbox,
    _jwt_dir: tempfile::TempDir,
}

async fn world() -> Option<World> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(addr), Some(token)) = (
        get("NSAUTH_TEST_VAULT_ADDR"),
        get("NSAUTH_TEST_VAULT_ROOT_TOKEN"),
    ) else {
        assert!(
            get("NSAUTH_REQUIRE_SERVICES").as_deref() != Some("1"),
            "NSAUTH_REQUIRE_SERVICES=1 but OpenBao is not configured; run cargo xtask test"
        );
        eprintln!("SKIPPED: no OpenBao (run cargo xtask services up)");
        return None;
    };
    let root = Root { addr, token };
    let prefix = format!("nsauth/e2e-ci-{}", uuid::Uuid::new_v4().simple());
    let policy = root.prefix_policy("secret", &prefix).await;
    let issuer = Arc::new(Issuer::new());
    let mount = oidc::jwt_role(&root, &issuer, AUD, &policy, "10m").await;
    let store_uri = format!(
        "vault+http://{}/secret/{prefix}",
        root.addr.trim_start_matches("http://")
    );
    let (oidc_url, oidc_asked) =
        oidc::github_oidc(Arc::clone(&issuer), REQUEST_TOKEN, "acme/app").await;
    let jwt_dir = tempfile::tempdir().unwrap();
    let jwt_path = jwt_dir.path().join("jwt");
    std::fs::write(&jwt_path, issuer.ci_jwt(AUD, "acme/app")).unwrap();
    let setup = Sandbox::remote(
        store_uri.clone(),
        vec![
            ("NSAUTH_VAULT_AUTH_METHOD".into(), "jwt".into()),
            ("NSAUTH_VAULT_AUTH_MOUNT".into(), mount.clone()),
            ("NSAUTH_VAULT_AUTH_ROLE".into(), "ci".into()),
            (
                "NSAUTH_VAULT_AUTH_JWT_PATH".into(),
                jwt_path.display().to_string(),
            ),
        ],
    );
    Some(World {
        emu: emulator().await,
        issuer,
        mount,
        store_uri,
        oidc_url,
        oidc_asked,
        setup,
        _jwt_dir: jwt_dir,
    })
}

/// What a finished run of the script left behind.
struct Run {
    out: Output,
    github_env: String,
    github_output: String,
}

impl World {
    /// `sh run.sh` with a clean environment: the action's inputs and the CI's variables.
    async fn run(&self, profile: &str, ci_env: &[(&str, &str)]) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let github_env = dir.path().join("github_env");
        let github_output = dir.path().join("github_output");
        std::fs::write(&github_env, "").unwrap();
        std::fs::write(&github_output, "").unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg(script())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("NSAUTH_BIN", nsauth_bin())
            .env("NSAUTH_PROFILE", profile)
            .env("NSAUTH_STORE", &self.store_uri)
            .env("NSAUTH_VAULT_AUTH_ROLE", "ci")
            .env("NSAUTH_VAULT_AUTH_MOUNT", &self.mount)
            // The emulator's refresh tokens live 3 hours.
            .env("NSAUTH_MIN_REFRESH_WINDOW", "1h")
            .env("GITHUB_ENV", &github_env)
            .env("GITHUB_OUTPUT", &github_output)
            .envs(ci_env.iter().copied())
            .stdin(Stdio::null());
        let out = tokio::task::spawn_blocking(move || cmd.output().expect("run sh"))
            .await
            .unwrap();
        Run {
            out,
            github_env: std::fs::read_to_string(&github_env).unwrap(),
            github_output: std::fs::read_to_string(&github_output).unwrap(),
        }
    }

    /// GitHub Actions' variables for a job with `permissions: id-token: write`.
    fn github(&self) -> Vec<(&str, &str)> {
        vec![
            ("GITHUB_ACTIONS", "true"),
            ("ACTIONS_ID_TOKEN_REQUEST_URL", self.oidc_url.as_str()),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN),
            ("NSAUTH_VAULT_AUTH_AUDIENCE", AUD),
        ]
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_action_exports_a_masked_token() {
    let Some(w) = world().await else { return };
    set_public_profile(&w.setup, &w.emu, "prod");
    login(&w.setup, "prod").await;

    let run = w.run("prod", &w.github()).await;
    let (stdout, stderr) = (text(&run.out.stdout), text(&run.out.stderr));
    assert!(
        run.out.status.success(),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        w.oidc_asked.load(Ordering::SeqCst) >= 1,
        "the job's OIDC token was used"
    );

    // GITHUB_ENV: NETSUITE_ACCESS_TOKEN<<DELIM / token / DELIM.
    let mut lines = run.github_env.lines();
    let head = lines.next().expect("GITHUB_ENV written");
    let delimiter = head
        .strip_prefix("NETSUITE_ACCESS_TOKEN<<")
        .expect("multiline-safe form");
    let token = lines.next().unwrap().to_owned();
    assert_eq!(lines.next(), Some(delimiter));
    assert!(delimiter.len() >= 20 && !token.contains(delimiter));
    assert!(
        token_works(&w.emu, &token).await,
        "the exported token works"
    );

    // The mask comes before the token appears anywhere else; stderr never shows it.
    let mask = format!("::add-mask::{token}");
    let first = stdout.find(&token).expect("the mask line names the token");
    assert_eq!(
        stdout.find(&mask),
        Some(first - "::add-mask::".len()),
        "{stdout}"
    );
    assert_eq!(stdout.matches(&token).count(), 1, "{stdout}");
    assert!(!stderr.contains(&token), "{stderr}");

    assert!(
        run.github_output
            .contains(&format!("account-id={}\n", w.emu.account_id())),
        "{}",
        run.github_output
    );
    assert!(
        run.github_output
            .contains(&format!("rest-url={}", w.emu.base_url())),
        "{}",
        run.github_output
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_action_fails_with_an_annotation_when_a_login_is_needed() {
    let Some(w) = world().await else { return };
    // A profile nobody has logged in to yet.
    set_public_profile(&w.setup, &w.emu, "fresh");
    let run = w.run("fresh", &w.github()).await;
    let stdout = text(&run.out.stdout);
    assert_eq!(
        run.out.status.code(),
        Some(3),
        "{stdout}\nstderr: {}",
        text(&run.out.stderr)
    );
    assert!(
        stdout
            .contains("::error title=NetSuite login needed::profile fresh needs a NetSuite login"),
        "{stdout}"
    );
    assert!(stdout.contains("nsauth login --profile fresh"), "{stdout}");
    assert!(run.github_env.is_empty() && run.github_output.is_empty());

    // Logged in, but the refresh token (3 hours at the emulator) ends within the window.
    login(&w.setup, "fresh").await;
    let mut env = w.github();
    env.push(("NSAUTH_MIN_REFRESH_WINDOW", "4h"));
    let run = w.run("fresh", &env).await;
    let stdout = text(&run.out.stdout);
    assert_eq!(run.out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("within 4h"), "{stdout}");
    assert!(run.github_env.is_empty());

    // A job without `permissions: id-token: write` has no request URL.
    let run = w.run("fresh", &[("GITHUB_ACTIONS", "true")]).await;
    let stdout = text(&run.out.stdout);
    assert_eq!(run.out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("::error title=No OIDC token::") && stdout.contains("id-token: write"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_template_script_exports_from_the_id_token() {
    let Some(w) = world().await else { return };
    set_public_profile(&w.setup, &w.emu, "prod");
    login(&w.setup, "prod").await;

    let id_token = w.issuer.ci_jwt(AUD, "acme/app");
    let gitlab = [
        ("GITLAB_CI", "true"),
        ("NSAUTH_ID_TOKEN", id_token.as_str()),
    ];
    let run = w.run("prod", &gitlab).await;
    let (stdout, stderr) = (text(&run.out.stdout), text(&run.out.stderr));
    assert!(
        run.out.status.success(),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.lines().all(|l| l.starts_with("export NETSUITE_")),
        "{stdout}"
    );
    assert!(!stderr.contains(&id_token), "{stderr}");
    assert!(run.github_env.is_empty(), "nothing written to files");

    // What the template's before_script does with it.
    let shell = Command::new("sh")
        .args([
            "-c",
            "eval \"$EXPORTS\" && printf '%s' \"$NETSUITE_ACCESS_TOKEN\"",
        ])
        .env("EXPORTS", &stdout)
        .output()
        .unwrap();
    let token = text(&shell.stdout);
    assert!(!stderr.contains(&token), "{stderr}");
    assert!(
        token_works(&w.emu, &token).await,
        "the exported token works"
    );

    // Without a login: the job fails with exit 3 and says why.
    set_public_profile(&w.setup, &w.emu, "fresh");
    let run = w.run("fresh", &gitlab).await;
    assert_eq!(run.out.status.code(), Some(3));
    assert!(run.out.stdout.is_empty(), "nothing to eval");
    assert!(text(&run.out.stderr).contains("ERROR: NetSuite login needed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_action_reads_the_token_object_of_token_json() {
    let Some(w) = world().await else { return };
    set_public_profile(&w.setup, &w.emu, "prod");
    login(&w.setup, "prod").await;
    // An nsauth whose `token --json` prints the token object (schema 1), as the real one does
    // from the version that has it; the script must take the token and the account from it.
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("nsauth-json");
    std::fs::write(
        &wrapper,
        r#"#!/bin/sh
case " $* " in
  *" token --json "*)
    t=$("$REAL_NSAUTH" token) || exit $?
    printf '{"schema":1,"access_token":"%s","token_type":"Bearer","expires_at":"2030-01-01T00:00:00Z","account_id":"ACCT_JSON","rest_url":"https://acct-json.example/services/rest"}\n' "$t" ;;
  *) exec "$REAL_NSAUTH" "$@" ;;
esac
"#,
    )
    .unwrap();
    let real = nsauth_bin().display().to_string();
    let wrapper = wrapper.display().to_string();
    let mut env = w.github();
    env.push(("REAL_NSAUTH", &real));
    // NSAUTH_BIN names one program: an executable shim runs the wrapper.
    let shim_dir = tempfile::tempdir().unwrap();
    let shim = shim_dir.path().join("nsauth");
    std::fs::write(&shim, format!("#!/bin/sh\nexec sh '{wrapper}' \"$@\"\n")).unwrap();
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let shim = shim.display().to_string();
    env.push(("NSAUTH_BIN", &shim));

    let run = w.run("prod", &env).await;
    let (stdout, stderr) = (text(&run.out.stdout), text(&run.out.stderr));
    assert!(
        run.out.status.success(),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let token = run
        .github_env
        .lines()
        .nth(1)
        .expect("token line")
        .to_owned();
    assert!(token_works(&w.emu, &token).await);
    assert!(
        stdout.starts_with(&format!("::add-mask::{token}\n")),
        "{stdout}"
    );
    assert!(!stderr.contains(&token) && !run.github_output.contains(&token));
    assert!(
        run.github_output.contains("account-id=ACCT_JSON\n"),
        "{}",
        run.github_output
    );
    assert!(
        run.github_output
            .contains("rest-url=https://acct-json.example/services/rest\n"),
        "{}",
        run.github_output
    );
}
