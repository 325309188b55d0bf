//! `nsauth m2m keygen`.

use super::Ctx;
use crate::cli::M2mCmd;
use crate::exit::Exit;
use nsauth_core::m2m::{self, KeyAlgorithm};
use nsauth_core::seal::{create_private_dir, write_new_private};
use nsauth_core::Error;

pub async fn run(ctx: &Ctx, cmd: M2mCmd) -> Result<Exit, Error> {
    let M2mCmd::Keygen {
        out,
        algorithm,
        days,
        subject,
    } = cmd;
    let alg: KeyAlgorithm = algorithm.parse()?;
    if days == 0 || days > 730 {
        return Err(Error::Invalid("--days must be between 1 and 730 (NetSuite accepts certificates valid for at most 2 years)".into()));
    }
    let key_path = out.join("private-key.pem");
    let cert_path = out.join("certificate.pem");
    for p in [&key_path, &cert_path] {
        if p.exists() {
            return Err(Error::Invalid(format!(
                "{} already exists; choose another --out directory (nothing was overwritten)",
                p.display()
            )));
        }
    }
    let generated = tokio::task::spawn_blocking(move || m2m::generate_key(alg, days, &subject))
        .await
        .map_err(|e| Error::Other(e.to_string()))??;
    create_private_dir(&out)
        .map_err(|e| Error::Invalid(format!("cannot create {}: {e}", out.display())))?;
    write_new_private(&key_path, generated.private_key.secret().as_bytes())
        .map_err(|e| Error::Invalid(format!("cannot write {}: {e}", key_path.display())))?;
    std::fs::write(&cert_path, &generated.certificate_pem)
        .map_err(|e| Error::Invalid(format!("cannot write {}: {e}", cert_path.display())))?;
    let info = m2m::inspect_certificate(&generated.certificate_pem)?;
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"private_key": key_path, "certificate": cert_path, "algorithm": alg.as_str(), "jws_alg": alg.jws_alg(),
                "not_after": crate::output::rfc3339(Some(info.not_after))})
        );
        return Ok(Exit::Success);
    }
    println!(
        "private key: {} (mode 0600; keep it secret, it never leaves this machine)",
        key_path.display()
    );
    println!(
        "certificate: {} ({}, valid until {})",
        cert_path.display(),
        info.key_description,
        nsauth_core::token::format_time(info.not_after)
    );
    println!();
    println!("Next steps for the NetSuite administrator:");
    println!("  1. Setup > Integration > Manage Authentication > OAuth 2.0 Client Credentials (M2M) Setup > Create New.");
    println!("  2. Choose the entity (user), the role (with \"Log in using OAuth 2.0 Access Tokens\") and the integration record");
    println!(
        "     (with the Client Credentials (Machine to Machine) grant enabled), and upload {}.",
        cert_path.display()
    );
    println!("  3. Send back the certificate ID NetSuite shows. Then run:");
    println!("     nsauth profile set NAME --grant client-credentials --account-id ACCOUNT --client-id CLIENT_ID \\");
    println!(
        "       --scope rest_webservices --certificate-id CERT_ID --private-key-file {}",
        key_path.display()
    );
    Ok(Exit::Success)
}
