//! What a plugin receives as `record`: sealed with the store key unless it declares
//! `encrypts_at_rest`, in which case the record as nsauth encodes it.

mod support;

use nsauth_store::{Precondition, ProfileName, StoreError, TokenStore};
use nsauth_store_local::seal::StoreKey;
use support::Plugins;

/// An in-memory plugin that also appends every record it receives to `received.txt`; with
/// `CROSS=1` its get returns the last record put, whatever the name.
const MEMORY: &str = r#"here = os.path.dirname(sys.argv[0])
hello_ok(read(), encrypts=os.environ.get("ENCRYPTS") == "1")
db, n = {}, 0
while True:
    req = read()
    if req["op"] == "put":
        n += 1
        db[req["name"]] = (req["record"], str(n))
        db["<last>"] = db[req["name"]]
        with open(os.path.join(here, "received.txt"), "a") as f:
            f.write(req["record"] + "\n")
        send({"id": req["id"], "ok": {"version": str(n)}})
    elif req["op"] == "get":
        key = "<last>" if os.environ.get("CROSS") == "1" else req["name"]
        got = db.get(key)
        send({"id": req["id"], "ok": got and {"record": got[0], "version": got[1]}})"#;

fn refresh_token(record: &nsauth_store::Record) -> String {
    let tokens = record.tokens.as_ref().expect("sample has tokens");
    tokens
        .refresh_token
        .as_ref()
        .expect("a refresh token")
        .secret()
        .to_owned()
}

async fn round_trip(extra: &[(&str, &str)]) -> (String, String) {
    let p = Plugins::new();
    p.python("mem", MEMORY);
    let mut env = vec![("NSAUTH_PLUGIN_ENV", "ENCRYPTS,CROSS")];
    env.extend_from_slice(extra);
    let store = support::open("plugin://mem/x", &p.vars(&env), &StoreKey::generate());
    let name = ProfileName::parse("prod").unwrap();
    let record = nsauth_conformance::sample_record("prod");
    let v = store
        .put(&name, &record, Precondition::Create)
        .await
        .unwrap();
    let back = store.load(&name).await.unwrap().expect("stored");
    assert_eq!((back.record, back.version), (record.clone(), v));
    let received = std::fs::read_to_string(p.dir.path().join("received.txt")).unwrap();
    (received, refresh_token(&record))
}

#[tokio::test]
async fn a_plugin_that_does_not_encrypt_receives_sealed_records() {
    let (received, token) = round_trip(&[]).await;
    assert!(received.starts_with("nsauth-sealed-v1:"), "{received}");
    assert!(
        !received.contains(&token),
        "the refresh token reached the plugin in plaintext"
    );
    assert!(
        !received.contains("client_id"),
        "the record reached the plugin unsealed"
    );
}

#[tokio::test]
async fn a_plugin_that_encrypts_receives_the_plain_record() {
    let (received, token) = round_trip(&[("ENCRYPTS", "1")]).await;
    assert!(
        received.contains(&token),
        "the plugin declared encrypts_at_rest: {received}"
    );
    let plain: serde_json::Value = serde_json::from_str(received.trim()).expect("record JSON");
    assert!(plain.is_object());
}

#[tokio::test]
async fn a_sealed_record_returned_under_another_name_is_refused() {
    let p = Plugins::new();
    p.python("mem", MEMORY);
    let vars = p.vars(&[("NSAUTH_PLUGIN_ENV", "CROSS"), ("CROSS", "1")]);
    let store = support::open("plugin://mem/x", &vars, &StoreKey::generate());
    let a = ProfileName::parse("a").unwrap();
    let b = ProfileName::parse("b").unwrap();
    store
        .put(
            &a,
            &nsauth_conformance::sample_record("a"),
            Precondition::Create,
        )
        .await
        .unwrap();
    let err = store.load(&b).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[tokio::test]
async fn capabilities_follow_what_the_plugin_declared() {
    for (encrypts, sealed) in [("0", true), ("1", false)] {
        let p = Plugins::new();
        p.python("mem", MEMORY);
        let vars = p.vars(&[("NSAUTH_PLUGIN_ENV", "ENCRYPTS"), ("ENCRYPTS", encrypts)]);
        let store = support::open("plugin://mem/x", &vars, &StoreKey::generate());
        assert!(store.capabilities().compare_and_swap);
        assert!(!store.capabilities().local);
        store.load(&ProfileName::parse("x").unwrap()).await.unwrap();
        // The contract's flag: "encrypted before it leaves nsauth".
        assert_eq!(
            store.capabilities().encrypts_at_rest,
            sealed,
            "ENCRYPTS={encrypts}"
        );
    }
}
