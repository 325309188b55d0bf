//! Shared by the plugin tests: the example Python plugin, hostile plugins written on the
//! fly, and stores opened on them with a chosen environment.
#![allow(dead_code)]

use async_trait::async_trait;
use nsauth_conformance::Fixture;
use nsauth_store::TokenStore;
use nsauth_store_local::seal::StoreKey;
use nsauth_store_plugin::PluginStore;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The directory holding the example plugin `nsauth-store-pydir`.
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plugins/python-dir")
}

/// An environment for [`PluginStore::from_uri_in`]: this process's `PATH` and `HOME`, the
/// given plugin directory, plus `extra`.
pub fn vars(plugin_dir: &Path, extra: &[(&str, &str)]) -> HashMap<String, OsString> {
    let mut v: HashMap<String, OsString> = HashMap::new();
    for k in ["PATH", "HOME"] {
        if let Some(val) = std::env::var_os(k) {
            v.insert(k.into(), val);
        }
    }
    v.insert(
        "NSAUTH_PLUGIN_PATH".into(),
        plugin_dir.as_os_str().to_owned(),
    );
    for (k, val) in extra {
        v.insert((*k).into(), (*val).into());
    }
    v
}

/// Opens `uri` with exactly `vars` as the environment and `key` as the store key.
pub fn open(uri: &str, vars: &HashMap<String, OsString>, key: &StoreKey) -> PluginStore {
    PluginStore::from_uri_in(uri, &|k| vars.get(k).cloned())
        .expect("open the plugin store")
        .with_store_key(key.clone())
}

/// The Python directory store in a temp dir; every `open` is a new plugin process.
pub struct PyDirFixture {
    pub dir: tempfile::TempDir,
    pub vars: HashMap<String, OsString>,
    pub key: StoreKey,
    /// Handles whose plugin has started, and how many are starting, in the background.
    ready: Arc<Mutex<(Vec<PluginStore>, usize)>>,
    /// Held for the fixture's life by [`PyDirFixture::one_at_a_time`].
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// How many started handles the fixture keeps ready.
const READY: usize = 8;

impl PyDirFixture {
    /// Made inside a Tokio runtime, it starts filling its pool at once.
    pub fn new(extra: &[(&str, &str)]) -> Self {
        let fx = Self {
            dir: tempfile::tempdir().expect("temp dir"),
            vars: vars(&example_dir(), extra),
            key: StoreKey::generate(),
            ready: Arc::default(),
            _turn: None,
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            fx.top_up();
        }
        fx
    }

    /// A fixture that waits until no other `one_at_a_time` fixture of this test binary is
    /// alive. Each broker check runs several Python interpreters and races a lease of 4 s;
    /// two checks at once on a 2-core machine starve the lease holder of CPU, which is a
    /// fact about the test machine, not about the store.
    pub async fn one_at_a_time(extra: &[(&str, &str)]) -> Self {
        static TURN: std::sync::OnceLock<Arc<tokio::sync::Mutex<()>>> = std::sync::OnceLock::new();
        let turn = Arc::clone(TURN.get_or_init(Arc::default))
            .lock_owned()
            .await;
        Self {
            _turn: Some(turn),
            ..Self::new(extra)
        }
    }

    pub fn uri(&self) -> String {
        format!(
            "plugin://pydir/{}",
            self.dir.path().join("profiles").display()
        )
    }

    pub fn store(&self) -> PluginStore {
        open(&self.uri(), &self.vars, &self.key)
    }

    /// Starts handles in the background until `READY` are ready or starting.
    fn top_up(&self) {
        let mut ready = self.ready.lock().unwrap();
        while ready.0.len() + ready.1 < READY {
            ready.1 += 1;
            let (store, pool) = (self.store(), Arc::clone(&self.ready));
            tokio::spawn(async move {
                let started = store.start().await.is_ok();
                let mut pool = pool.lock().unwrap();
                pool.1 -= 1;
                if started {
                    pool.0.push(store);
                }
            });
        }
    }
}

#[async_trait]
impl Fixture for PyDirFixture {
    /// A new handle whose plugin has already started, from the few the fixture keeps ready
    /// (a warm pool): the suite's broker checks bound each store call by 2 s and race a
    /// refresh of about a second, which is about serving requests, not about starting Python
    /// interpreters on a busy machine.
    async fn open(&self) -> Arc<dyn TokenStore> {
        let taken = self.ready.lock().unwrap().0.pop();
        self.top_up();
        let store = match taken {
            Some(store) => store,
            None => {
                let store = self.store();
                store.start().await.expect("start the plugin");
                store
            }
        };
        Arc::new(store)
    }
}

/// A directory of hostile plugins written by a test.
pub struct Plugins {
    pub dir: tempfile::TempDir,
}

impl Plugins {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Writes `nsauth-store-NAME` as an executable Python script.
    pub fn python(&self, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(format!("nsauth-store-{name}"));
        std::fs::write(&path, format!("#!{}\n{PRELUDE}\n{body}\n", python()))
            .expect("write plugin");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    pub fn vars(&self, extra: &[(&str, &str)]) -> HashMap<String, OsString> {
        vars(self.dir.path(), extra)
    }
}

/// The Python interpreter itself (not a version manager's shim, which would add its own
/// variables to the environment a test inspects).
fn python() -> String {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let out = std::process::Command::new("python3")
                .args(["-c", "import sys; print(sys.executable)"])
                .output()
                .expect("python3 is installed");
            String::from_utf8(out.stdout)
                .expect("utf-8")
                .trim()
                .to_owned()
        })
        .clone()
}

/// Helpers for hostile plugins: `read()` the next request, `send(obj)` a reply,
/// `hello_ok(req)` the normal answer to hello.
const PRELUDE: &str = r#"
import json, os, sys, time
def read():
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    return json.loads(line)
def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
def hello_ok(req, encrypts=False):
    send({"id": req["id"], "ok": {"protocol": 1, "capabilities": {"compare_and_swap": True, "encrypts_at_rest": encrypts}}})
"#;

/// Polls `f` until it is true or `deadline` passes.
pub fn poll(deadline: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + deadline;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
