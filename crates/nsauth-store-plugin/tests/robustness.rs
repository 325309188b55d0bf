//! Hostile plugins: each misbehaviour becomes a one-line store error of the right kind,
//! within the timeout, without a panic, and the next request starts a fresh plugin.

mod support;

use nsauth_store::{ProfileName, StoreError, TokenStore};
use nsauth_store_local::seal::StoreKey;
use nsauth_store_plugin::PluginStore;
use std::time::{Duration, Instant};
use support::Plugins;

fn prod() -> ProfileName {
    ProfileName::parse("prod").unwrap()
}

/// `plugin://NAME/x` from `plugins`, with `extra` environment.
fn store(plugins: &Plugins, name: &str, extra: &[(&str, &str)]) -> PluginStore {
    support::open(
        &format!("plugin://{name}/x"),
        &plugins.vars(extra),
        &StoreKey::generate(),
    )
}

/// The message, asserting it is one line and names the plugin.
fn one_line(e: &StoreError, plugin: &str) -> String {
    let m = e.to_string();
    assert_eq!(m.lines().count(), 1, "not one line: {m}");
    assert!(
        m.contains(&format!("nsauth-store-{plugin}")),
        "the plugin is not named: {m}"
    );
    m
}

/// Answers hello, then `body` handles the first request `req` (and every later one).
fn after_hello(body: &str) -> String {
    let indented: String = body.lines().map(|l| format!("    {l}\n")).collect();
    format!("hello_ok(read())\nwhile True:\n    req = read()\n{indented}")
}

#[tokio::test]
async fn garbage_is_an_unavailable_error_that_does_not_echo_the_line() {
    let p = Plugins::new();
    p.python(
        "garbage",
        &after_hello(r#"print("SECRET-LOOKING not json", flush=True)"#),
    );
    let err = store(&p, "garbage", &[]).load(&prod()).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Unavailable {
                retryable: false,
                ..
            }
        ),
        "{err:?}"
    );
    let m = one_line(&err, "garbage");
    assert!(
        m.contains("not a JSON object") && m.contains("during get"),
        "{m}"
    );
    assert!(!m.contains("SECRET"), "{m}");
}

#[tokio::test]
async fn a_reply_to_another_request_is_refused() {
    let p = Plugins::new();
    p.python(
        "wrongid",
        &after_hello(r#"send({"id": req["id"] + 1, "ok": None})"#),
    );
    let err = store(&p, "wrongid", &[]).load(&prod()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(one_line(&err, "wrongid").contains("answered request 3 while nsauth waited for 2"));
}

#[tokio::test]
async fn a_huge_line_is_refused_without_reading_it_all() {
    let p = Plugins::new();
    p.python(
        "huge",
        &after_hello(r#"sys.stdout.write("x" * (5 << 20) + "\n"); sys.stdout.flush()"#),
    );
    let err = store(&p, "huge", &[]).load(&prod()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(one_line(&err, "huge").contains("longer than 4 MiB"));
}

#[tokio::test]
async fn another_protocol_version_is_a_config_error_saying_what_to_do() {
    let p = Plugins::new();
    p.python(
        "proto2",
        r#"req = read(); send({"id": req["id"], "ok": {"protocol": 2, "capabilities": {"compare_and_swap": True}}}); read()"#,
    );
    let err = store(&p, "proto2", &[]).list().await.unwrap_err();
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    let m = one_line(&err, "proto2");
    assert!(m.contains("protocol 2") && m.contains("upgrade"), "{m}");
}

#[tokio::test]
async fn a_plugin_without_compare_and_swap_is_refused() {
    let p = Plugins::new();
    p.python(
        "nocas",
        r#"req = read(); send({"id": req["id"], "ok": {"protocol": 1, "capabilities": {}, "future": 1}}); read()"#,
    );
    let err = store(&p, "nocas", &[]).list().await.unwrap_err();
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    assert!(one_line(&err, "nocas").contains("compare_and_swap"));
}

#[tokio::test]
async fn a_plugin_that_dies_mid_request_fails_it_and_the_next_request_restarts_it() {
    let p = Plugins::new();
    // The first life dies on its first get; later lives answer.
    p.python(
        "dies",
        &after_hello(
            r#"marker = os.path.join(os.path.dirname(sys.argv[0]), "died-once")
if not os.path.exists(marker):
    open(marker, "w").close()
    os._exit(3)
send({"id": req["id"], "ok": None})"#,
        ),
    );
    let s = store(&p, "dies", &[]);
    let err = s.load(&prod()).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    let m = one_line(&err, "dies");
    assert!(
        m.contains("during get") && m.contains("exit status: 3"),
        "{m}"
    );
    assert!(
        s.load(&prod()).await.unwrap().is_none(),
        "a restarted plugin answers"
    );
    assert!(
        s.load(&prod()).await.unwrap().is_none(),
        "and keeps answering"
    );
}

#[tokio::test]
async fn a_plugin_that_closes_its_output_fails_the_request() {
    let p = Plugins::new();
    p.python("closes", &after_hello("os.close(1)\ntime.sleep(60)"));
    let started = Instant::now();
    let err = store(&p, "closes", &[]).load(&prod()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "it waited for the timeout"
    );
    assert!(err.is_retryable(), "{err:?}");
    assert!(one_line(&err, "closes").contains("closed its output"));
}

#[tokio::test]
async fn a_plugin_that_exits_at_start_or_cannot_start_is_an_error() {
    let p = Plugins::new();
    p.python("exits", "sys.exit(1)");
    let err = store(&p, "exits", &[]).list().await.unwrap_err();
    assert!(one_line(&err, "exits").contains("during hello"), "{err}");
    // A script whose interpreter does not exist.
    let bad = p.dir.path().join("nsauth-store-badshebang");
    std::fs::write(&bad, "#!/nonexistent/interpreter\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = store(&p, "badshebang", &[]).list().await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Unavailable {
                retryable: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(one_line(&err, "badshebang").contains("cannot start"));
}

#[tokio::test]
async fn a_plugin_that_never_answers_times_out_within_the_bound_and_is_stopped() {
    let p = Plugins::new();
    p.python(
        "hangs",
        &after_hello(
            r#"if req["op"] == "list":
    send({"id": req["id"], "ok": {"names": []}})
    continue
open(os.path.join(os.path.dirname(sys.argv[0]), "pid"), "w").write(str(os.getpid()))
time.sleep(3600)"#,
        ),
    );
    let s = store(&p, "hangs", &[("NSAUTH_PLUGIN_TIMEOUT_MS", "1500")]);
    s.list()
        .await
        .expect("the plugin has started and answers list");
    let started = Instant::now();
    let err = s.load(&prod()).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        (Duration::from_millis(1500)..Duration::from_millis(4500)).contains(&took),
        "the timeout is 1.5 s, the error came after {took:?}"
    );
    assert!(err.is_retryable(), "{err:?}");
    assert!(one_line(&err, "hangs").contains("did not answer get within 1500 ms"));
    // The hung plugin was killed, not left behind.
    let pid = std::fs::read_to_string(p.dir.path().join("pid")).unwrap();
    let gone = support::poll(Duration::from_secs(5), || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.is_empty() || stat.contains(") Z ")
    });
    assert!(gone, "plugin {pid} is still running after the timeout");
}

#[tokio::test]
async fn a_caller_that_gives_up_does_not_leave_its_reply_for_the_next_one() {
    let p = Plugins::new();
    // Every get is answered after 400 ms, for its own id.
    p.python(
        "slow",
        &after_hello(r#"time.sleep(0.4); send({"id": req["id"], "ok": None})"#),
    );
    let s = store(&p, "slow", &[]);
    s.list().await.unwrap_err(); // (the plugin answers list with null: an error, but it has started)
    let gave_up = tokio::time::timeout(Duration::from_millis(100), s.load(&prod())).await;
    assert!(gave_up.is_err(), "the first caller gave up");
    // Without care, the next get would read the abandoned reply (id 3) and fail.
    assert!(s.load(&prod()).await.expect("a fresh reply").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_from_many_tasks_each_get_their_own_answer() {
    let p = Plugins::new();
    // Echoes the name back as the version, with a short pause to let requests pile up.
    p.python(
        "echo",
        &after_hello(
            r#"time.sleep(0.005)
send({"id": req["id"], "ok": {"version": req["name"]}})"#,
        ),
    );
    let s = std::sync::Arc::new(store(&p, "echo", &[]));
    let record = nsauth_conformance::sample_record("echo");
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let (s, record) = (s.clone(), record.clone());
            tokio::spawn(async move {
                let name = ProfileName::parse(&format!("p{i}")).unwrap();
                let v = s
                    .put(&name, &record, nsauth_store::Precondition::Create)
                    .await;
                (name, v)
            })
        })
        .collect();
    for t in tasks {
        let (name, v) = t.await.expect("no panic");
        assert_eq!(v.expect("answered").0, name.as_str());
    }
}

#[tokio::test]
async fn a_plugin_error_keeps_the_plugin_running() {
    let p = Plugins::new();
    p.python(
        "denies",
        &after_hello(
            r#"send({"id": req["id"], "error": {"kind": "denied", "message": "role lacks read\nsecond line", "retryable": False}})"#,
        ),
    );
    let s = store(&p, "denies", &[]);
    for _ in 0..2 {
        let err = s.load(&prod()).await.unwrap_err();
        assert!(matches!(err, StoreError::Denied(_)), "{err:?}");
        assert!(one_line(&err, "denies").contains("role lacks read"));
    }
}

#[tokio::test]
async fn an_empty_version_or_a_misshapen_payload_is_refused() {
    let p = Plugins::new();
    p.python(
        "emptyver",
        &after_hello(
            r#"if req["op"] == "put":
    send({"id": req["id"], "ok": {"version": ""}})
else:
    send({"id": req["id"], "ok": {"names": "not-a-list"}})"#,
        ),
    );
    let s = store(&p, "emptyver", &[]);
    let record = nsauth_conformance::sample_record("prod");
    let err = s
        .put(&prod(), &record, nsauth_store::Precondition::Create)
        .await
        .unwrap_err();
    assert!(
        one_line(&err, "emptyver").contains("empty version"),
        "{err}"
    );
    let err = s.list().await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Unavailable {
                retryable: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(one_line(&err, "emptyver").contains("wrong shape"), "{err}");
}

#[tokio::test]
async fn start_runs_the_plugin_before_any_request_and_reports_its_capabilities() {
    let p = Plugins::new();
    p.python(
        "early",
        r#"open(os.path.join(os.path.dirname(sys.argv[0]), "started"), "w").close()
hello_ok(read(), encrypts=True)
while True:
    req = read(); send({"id": req["id"], "ok": None})"#,
    );
    let s = store(&p, "early", &[]);
    assert!(
        !p.dir.path().join("started").exists(),
        "nothing runs at open"
    );
    let caps = s.start().await.expect("start");
    assert!(caps.compare_and_swap && caps.encrypts_at_rest);
    assert!(p.dir.path().join("started").exists());
    assert!(
        s.load(&prod()).await.unwrap().is_none(),
        "the started plugin serves requests"
    );
}

#[tokio::test]
async fn dropping_the_store_stops_its_plugin() {
    let p = Plugins::new();
    // Ignores a closed stdin: only a kill stops it.
    p.python(
        "stubborn",
        r#"open(os.path.join(os.path.dirname(sys.argv[0]), "pid"), "w").write(str(os.getpid()))
hello_ok(read())
time.sleep(3600)"#,
    );
    let s = store(&p, "stubborn", &[]);
    s.start().await.expect("start");
    let pid = std::fs::read_to_string(p.dir.path().join("pid")).unwrap();
    let stat = || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        !stat().is_empty() && !stat().contains(") Z "),
        "the plugin runs"
    );
    drop(s);
    let gone = support::poll(Duration::from_secs(5), || {
        stat().is_empty() || stat().contains(") Z ")
    });
    assert!(gone, "plugin {pid} outlived its store");
}
