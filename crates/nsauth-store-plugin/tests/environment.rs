//! What a plugin is given: no arguments, PATH/HOME/TMPDIR/LANG and the variables named in
//! NSAUTH_PLUGIN_ENV, never nsauth's own secrets even when named.

mod support;

use nsauth_store::TokenStore;
use nsauth_store_local::seal::StoreKey;
use std::collections::BTreeMap;
use support::Plugins;

#[tokio::test]
async fn the_plugin_sees_only_the_allowed_and_named_variables() {
    let p = Plugins::new();
    p.python(
        "envdump",
        r#"here = os.path.dirname(sys.argv[0])
json.dump({"env": dict(os.environ), "argv": sys.argv[1:]}, open(os.path.join(here, "env.json"), "w"))
req = read(); hello_ok(req)
while True:
    req = read(); send({"id": req["id"], "ok": {"names": []}})"#,
    );
    let key_b64 = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";
    let vars = p.vars(&[
        ("LANG", "C.UTF-8"),
        ("TMPDIR", "/tmp"),
        ("NSAUTH_STORE_KEY", key_b64),
        ("NSAUTH_STORE_KEY_FILE", "/somewhere/store.key"),
        ("NSAUTH_CLIENT_SECRET", "client-secret-value"),
        ("MY_PLUGIN_CRED", "plugin-credential"),
        ("UNNAMED_VAR", "not for plugins"),
        (
            "NSAUTH_PLUGIN_ENV",
            "MY_PLUGIN_CRED, NSAUTH_STORE_KEY,NSAUTH_STORE_KEY_FILE,NSAUTH_CLIENT_SECRET",
        ),
    ]);
    let store = support::open("plugin://envdump/x", &vars, &StoreKey::generate());
    store.list().await.expect("list");
    let dump: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.dir.path().join("env.json")).expect("the plugin ran"),
    )
    .unwrap();
    let env: BTreeMap<String, String> = serde_json::from_value(dump["env"].clone()).unwrap();
    let names: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["HOME", "LANG", "MY_PLUGIN_CRED", "PATH", "TMPDIR"],
        "{names:?}"
    );
    assert_eq!(env["MY_PLUGIN_CRED"], "plugin-credential");
    assert!(dump["argv"].as_array().unwrap().is_empty(), "no arguments");
    let all = dump.to_string();
    for secret in [key_b64, "client-secret-value", "/somewhere/store.key"] {
        assert!(!all.contains(secret), "the plugin saw {secret}");
    }
}
