//! A Rust service calling NetSuite with nsauth. Configure it like the CLI (`NSAUTH_STORE`,
//! `NSAUTH_PROFILE`, `NSAUTH_STORE_KEY_FILE`, ...), log in once with `nsauth login`, then run
//! `cargo run -p nsauth-examples --bin nsauth-example-service`.
use std::process::ExitCode;
use std::time::Duration;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let client = nsauth::Client::from_env()?;
    let profile = client.profile().to_owned();
    let token = client.token(&profile, Duration::from_secs(60)).await?;
    println!(
        "account {}: token valid until {}",
        token.account_id, token.expires_at
    );
    // Bearer token added for the REST base only; on 401 one shared refresh, then one retry.
    let resp = client
        .http(&profile)
        .get("record/v1/metadata-catalog")
        .await?;
    let status = resp.status().as_u16();
    let body: serde_json::Value = serde_json::from_str(&resp.text().await?)?;
    let names: Vec<&str> = body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["name"].as_str())
        .collect();
    println!(
        "GET record/v1/metadata-catalog: HTTP {status}; records: {}",
        names.join(", ")
    );
    if status != 200 {
        return Err(format!("NetSuite answered HTTP {status}").into());
    }
    Ok(())
}
