//! The IAM policy in the user guide is the policy file, and both are valid JSON naming every
//! Secrets Manager action the store calls.

use std::path::Path;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_guide_shows_the_policy_file_verbatim() {
    let policy = read("docs/stores/aws-iam-policy.json");
    let guide = read("docs/stores/aws.md");
    assert!(
        guide.contains(&format!("```json\n{policy}```")),
        "docs/stores/aws.md must quote docs/stores/aws-iam-policy.json exactly"
    );
    let parsed: serde_json::Value = serde_json::from_str(&policy).expect("valid JSON");
    let actions: Vec<&str> = parsed["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|s| match &s["Action"] {
            serde_json::Value::String(a) => vec![a.as_str()],
            serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
            _ => vec![],
        })
        .collect();
    let source = ["store.rs", "delete.rs"]
        .map(|f| read(&format!("crates/nsauth-store-aws/src/{f}")))
        .join("\n");
    for (call, action) in [
        (".create_secret()", "CreateSecret"),
        (".describe_secret()", "DescribeSecret"),
        (".get_secret_value()", "GetSecretValue"),
        (".put_secret_value()", "PutSecretValue"),
        (".update_secret_version_stage()", "UpdateSecretVersionStage"),
        (".delete_secret()", "DeleteSecret"),
        (".restore_secret()", "RestoreSecret"),
        (".list_secrets()", "ListSecrets"),
    ] {
        assert!(source.contains(call), "the store no longer calls {call}");
        assert!(
            actions.contains(&format!("secretsmanager:{action}").as_str()),
            "the policy lacks secretsmanager:{action}"
        );
    }
    assert_eq!(
        actions.len(),
        8,
        "the policy grants only what the store calls"
    );
}
