//! `nsauth m2m keygen` and `nsauth m2m rotate`.

use super::Ctx;
use crate::cli::{M2mCmd, M2mRotateArgs};
use crate::exit::Exit;
use nsauth_core::m2m::rotate::{self, RotateRequest};
use nsauth_core::m2m::{self, KeyAlgorithm};
use nsauth_core::seal::{create_private_dir, write_new_private};
use nsauth_core::store;
use nsauth_core::Error;
use std::path::PathBuf;

pub async fn run(ctx: &Ctx, cmd: M2mCmd) -> Result<Exit, Error> {
    match cmd {
        M2mCmd::Keygen {
            out,
            algorithm,
            days,
            subject,
        } => keygen(ctx, out, algorithm, days, subject).await,
        M2mCmd::Rotate(args) => rotate_cmd(ctx, args).await,
    }
}

async fn keygen(
    ctx: &Ctx,
    out: PathBuf,
    algorithm: String,
    days: u32,
    subject: String,
) -> Result<Exit, Error> {
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
        crate::output::print_json(
            serde_json::json!({"private_key": key_path, "certificate": cert_path, "algorithm": alg.as_str(), "jws_alg": alg.jws_alg(),
                "not_after": crate::output::rfc3339(Some(info.not_after))}),
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

/// `nsauth m2m rotate`: make (or show, cancel, finish) the next certificate of a profile.
async fn rotate_cmd(ctx: &Ctx, args: M2mRotateArgs) -> Result<Exit, Error> {
    let name = ctx.name()?;
    if !(args.show || args.finish || args.cancel) {
        rotate::check_days(args.days)?;
    }
    let algorithm = args
        .algorithm
        .as_deref()
        .map(str::parse::<KeyAlgorithm>)
        .transpose()?;
    if let Some(out) = &args.out {
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if out.exists() || !parent.is_dir() {
            return Err(Error::Invalid(format!(
                "--out {} must be a new file in an existing directory (nothing was changed)",
                out.display()
            )));
        }
    }
    let store = ctx.store()?;
    if args.finish || args.cancel {
        let (dropped, _) = store::update(store.as_ref(), &name, |rec| {
            Ok(if args.finish {
                rotate::finish(rec)
            } else {
                rotate::cancel(rec)
            })
        })
        .await?;
        let (what, none) = if args.finish {
            ("the previous key", "there was no previous key")
        } else {
            (
                "the waiting next certificate",
                "no next certificate was waiting",
            )
        };
        match dropped {
            Some(_) => {
                audit(
                    ctx,
                    store.as_ref(),
                    name.as_str(),
                    &format!("{what} forgotten"),
                );
                ctx.note(format!("profile {name}: {what} is forgotten"));
            }
            None => ctx.note(format!("profile {name}: {none}; nothing changed")),
        }
        if ctx.json {
            crate::output::print_json(
                serde_json::json!({"profile": name.as_str(), "changed": dropped.is_some()}),
            );
        }
        return Ok(Exit::Success);
    }
    let (pem, info, replaced) = if args.show {
        let rec = store::load_existing(store.as_ref(), &name).await?.record;
        let Some(next) = rec.next_certificate else {
            return Err(Error::Invalid(format!(
                "no new certificate is waiting for profile {name}; make one with: nsauth m2m rotate --profile {name}"
            )));
        };
        let info = m2m::inspect_certificate(&next.certificate_pem)?;
        (next.certificate_pem, info, false)
    } else {
        let made = rotate::rotate(
            store.as_ref(),
            &name,
            RotateRequest {
                algorithm,
                days: args.days,
                subject: args.subject.clone(),
                replace: args.replace,
            },
        )
        .await?;
        let detail = if made.replaced {
            "next certificate replaced"
        } else {
            "next certificate made"
        };
        audit(ctx, store.as_ref(), name.as_str(), detail);
        (made.certificate_pem, made.info, made.replaced)
    };
    // The record is written first: a certificate file never exists without its stored key.
    if let Some(out) = &args.out {
        write_public_new(out, &pem).map_err(|e| {
            Error::Invalid(format!(
                "the certificate is stored but {} could not be written ({e}); print it with: nsauth m2m rotate --profile {name} --show",
                out.display()
            ))
        })?;
    }
    if ctx.json {
        crate::output::print_json(
            serde_json::json!({"profile": name.as_str(), "certificate_pem": pem, "certificate_file": args.out,
                "key": info.key_description, "not_after": crate::output::rfc3339(Some(info.not_after)), "replaced": replaced}),
        );
        return Ok(Exit::Success);
    }
    let until = nsauth_core::token::format_time(info.not_after);
    println!(
        "Next certificate for profile {name} ({}, valid until {until}); the current one keeps working until you switch.",
        info.key_description
    );
    let upload = match &args.out {
        Some(out) => {
            println!("certificate: {}", out.display());
            out.display().to_string()
        }
        None => {
            print!("{pem}");
            "the certificate above (save it as a .pem file)".to_owned()
        }
    };
    println!();
    println!("Next steps for the NetSuite administrator:");
    println!("  1. Setup > Integration > Manage Authentication > OAuth 2.0 Client Credentials (M2M) Setup > Create New.");
    println!("  2. Choose the same entity, role and application as the current certificate, and upload {upload}.");
    println!("  3. Send back the new certificate ID. Then run:");
    println!("     nsauth profile set {name} --certificate-id NEW_ID");
    println!("  4. Once tokens work, remove the old certificate in NetSuite and run:");
    println!("     nsauth m2m rotate --profile {name} --finish");
    Ok(Exit::Success)
}

/// An `m2m-rotate` entry in the audit trail (no key, no certificate: what happened only).
fn audit(ctx: &Ctx, store: &dyn nsauth_core::TokenStore, profile: &str, detail: &str) {
    let event = nsauth_core::audit::AuditEvent::new("m2m-rotate", profile, &store.describe());
    super::audit::record(ctx, store, &event.detail(detail));
}

/// Writes a public file that must not exist yet.
fn write_public_new(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}
