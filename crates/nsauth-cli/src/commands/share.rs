//! `nsauth share keygen|export|import`: hand a profile (and its tokens) to someone else,
//! encrypted with age to their public key.

use super::Ctx;
use crate::exit::Exit;
use crate::output;
use clap::Subcommand;
use nsauth_core::profile::GrantKind;
use nsauth_core::seal::{create_private_dir, write_new_private};
use nsauth_core::share::{self, Identity, Recipient};
use nsauth_core::token::format_time;
use nsauth_core::{Error, ProfileName};
use serde_json::json;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// Share bundles: a profile, and if asked its tokens, encrypted to a colleague's key.
#[derive(Debug, Subcommand)]
pub enum ShareCmd {
    /// Make an age identity file to receive bundles with; prints its recipient (age1…).
    Keygen {
        /// Where to write the identity (mode 0600; an existing file is never replaced).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Write the profile (--profile), and with --with-tokens its tokens, encrypted to the
    /// recipients, into a new file.
    Export {
        /// An age recipient (age1…), an SSH public key ("ssh-ed25519 AAAA…", "ssh-rsa AAAA…"),
        /// or @FILE with one of those on each line (# comments allowed). Repeatable.
        #[arg(
            long = "recipient",
            short = 'r',
            value_name = "RECIPIENT",
            required = true
        )]
        recipients: Vec<String>,
        /// Include the tokens. For a public client this moves them: this copy stops
        /// refreshing, because its refresh token is single-use.
        #[arg(long)]
        with_tokens: bool,
        /// The bundle file to create (an existing file is never replaced).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Add the profile in a bundle to this store (never replacing an existing profile).
    Import {
        /// The bundle written by `nsauth share export`.
        file: PathBuf,
        /// Your age identity file (from `nsauth share keygen`) or unencrypted SSH private key.
        #[arg(long, value_name = "FILE")]
        identity: PathBuf,
        /// The profile name to use here (default: the name in the bundle).
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
        /// Accept endpoints that are not on NetSuite's domains (*.netsuite.com). age does not
        /// prove who wrote a bundle: check such hosts with the sender first.
        #[arg(long)]
        yes: bool,
    },
}

/// Runs a `share` subcommand.
pub async fn run(ctx: &Ctx, cmd: ShareCmd) -> Result<Exit, Error> {
    match cmd {
        ShareCmd::Keygen { out } => keygen(ctx, &out),
        ShareCmd::Export {
            recipients,
            with_tokens,
            out,
        } => export(ctx, &recipients, with_tokens, &out).await,
        ShareCmd::Import {
            file,
            identity,
            as_name,
            yes,
        } => import(ctx, &file, &identity, as_name.as_deref(), yes).await,
    }
}

fn keygen(ctx: &Ctx, out: &Path) -> Result<Exit, Error> {
    if out.symlink_metadata().is_ok() {
        return Err(Error::Invalid(format!(
            "{} already exists; choose another --out (nothing was overwritten)",
            out.display()
        )));
    }
    if let Some(dir) = out.parent() {
        create_private_dir(dir)
            .map_err(|e| Error::Invalid(format!("cannot create {}: {e}", dir.display())))?;
    }
    let generated = share::generate_identity();
    write_new_private(out, generated.file_contents.as_bytes()).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Invalid(format!(
                "{} already exists; choose another --out (nothing was overwritten)",
                out.display()
            ))
        } else {
            Error::Invalid(format!("cannot write {}: {e}", out.display()))
        }
    })?;
    if ctx.json {
        output::print_json(json!({"identity": out, "recipient": generated.recipient}));
    } else {
        println!("{}", generated.recipient);
    }
    ctx.note(format!(
        "identity written to {} (mode 0600; keep it secret). Send the recipient above to whoever shares a profile with you:\n  nsauth share export --recipient {} --out FILE",
        out.display(),
        generated.recipient
    ));
    Ok(Exit::Success)
}

/// Reads `--recipient` values: keys as given, `@FILE` for a list.
fn recipients(values: &[String]) -> Result<Vec<Recipient>, Error> {
    let mut out = Vec::new();
    for v in values {
        match v.strip_prefix('@') {
            Some(path) => {
                let path = Path::new(path);
                let bytes =
                    share::read_limited(path, share::MAX_KEY_FILE_BYTES, "recipients file")?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    Error::Invalid(format!(
                        "{} is not a text file of public keys",
                        path.display()
                    ))
                })?;
                out.extend(Recipient::parse_list(&text, &path.display().to_string())?);
            }
            None => out.push(Recipient::parse(v)?),
        }
    }
    Ok(out)
}

fn grant_and_client(grant: GrantKind, public: bool) -> String {
    match grant {
        GrantKind::ClientCredentials => grant.as_str().to_owned(),
        GrantKind::AuthorizationCode => format!(
            "{}, {} client",
            grant.as_str(),
            if public { "public" } else { "confidential" }
        ),
    }
}

async fn export(
    ctx: &Ctx,
    values: &[String],
    with_tokens: bool,
    out: &Path,
) -> Result<Exit, Error> {
    let name = ctx.name()?;
    let recipients = recipients(values)?;
    if out.symlink_metadata().is_ok() {
        return Err(Error::Invalid(format!(
            "{} already exists; choose another --out (nothing was overwritten)",
            out.display()
        )));
    }
    let store = ctx.store()?;
    let res = share::export(store.as_ref(), &name, &recipients, with_tokens, out).await;
    super::audit::record(
        ctx,
        store.as_ref(),
        &nsauth_core::audit::AuditEvent::new("share-export", name.as_str(), &store.describe())
            .outcome(crate::exit::audit_outcome(&res))
            .detail(format!(
                "to {}",
                out.file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )),
    );
    let done = res?;
    let refresh_end = done.refresh_expires_at.map(format_time);
    if ctx.json {
        output::print_object(
            true,
            &json!({
                "bundle": out,
                "profile": name.as_str(),
                "grant": done.grant.as_str(),
                "client_type": if done.public_client { "public" } else { "confidential" },
                "with_tokens": done.with_tokens,
                "refresh_expires_at": output::rfc3339(done.refresh_expires_at),
                "source_moved": done.source_moved,
                "recipients": recipients.iter().map(|r| r.kind()).collect::<Vec<_>>(),
            }),
        );
    } else {
        println!(
            "wrote {}: profile {name} ({}){}, encrypted to {} recipient{} ({})",
            out.display(),
            grant_and_client(done.grant, done.public_client),
            if done.with_tokens {
                " with tokens"
            } else {
                " without tokens"
            },
            recipients.len(),
            if recipients.len() == 1 { "" } else { "s" },
            recipients
                .iter()
                .map(|r| r.kind())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if done.source_moved {
        eprintln!(
            "warning: profile {name} is a public client, whose refresh token is single-use: from now on only the importer holds the tokens. This copy kept only their fingerprints; it can neither refresh nor revoke them (run nsauth login --profile {name} to use it again on its own){}",
            refresh_end
                .map(|t| format!("; the moved refresh token ends {t}"))
                .unwrap_or_default()
        );
    } else if done.with_tokens && done.grant == GrantKind::AuthorizationCode {
        ctx.note(format!(
            "profile {name} is a confidential client: NetSuite reuses its refresh token, so this copy and the imported one both keep refreshing; revoking it (nsauth revoke) at either end ends both"
        ));
    }
    if done.holds_secrets {
        ctx.note(
            "the bundle holds secrets (only its recipients can read them): delete it once imported",
        );
    }
    Ok(Exit::Success)
}

async fn import(
    ctx: &Ctx,
    file: &Path,
    identity: &Path,
    as_name: Option<&str>,
    yes: bool,
) -> Result<Exit, Error> {
    let wanted = as_name.map(ProfileName::parse).transpose()?;
    let id = Identity::read_file(identity)?;
    let bytes = share::read_limited(file, share::MAX_BUNDLE_BYTES, "share bundle")?;
    let bundle = share::open(&bytes, &id).map_err(|e| match e {
        Error::Invalid(m) => Error::Invalid(format!("cannot import {}: {m}", file.display())),
        other => other,
    })?;
    drop(id);
    let name = wanted.unwrap_or_else(|| bundle.profile_name.clone());
    let store = ctx.store()?;
    review(ctx, &bundle);
    let foreign = bundle.foreign_hosts();
    let res = if !foreign.is_empty() && !yes {
        Err(Error::Invalid(format!(
            "{} points nsauth at {} not on NetSuite's domains ({}); a forged bundle can send your login to a phishing page, and age does not prove who wrote it: confirm with the sender, then import again with --yes (nothing was imported)",
            file.display(),
            if foreign.len() == 1 { "a host" } else { "hosts" },
            foreign.join(", ")
        )))
    } else {
        share::import(store.as_ref(), &bundle, &name).await
    };
    let mut ev =
        nsauth_core::audit::AuditEvent::new("share-import", name.as_str(), &store.describe())
            .outcome(crate::exit::audit_outcome(&res))
            .detail(format!(
                "from {}",
                file.file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
    if let Some(t) = bundle.tokens.as_ref() {
        ev = ev.fingerprint(
            t.refresh_token
                .as_ref()
                .map(|r| r.fingerprint())
                .unwrap_or_else(|| t.access_token.fingerprint()),
        );
    }
    super::audit::record(ctx, store.as_ref(), &ev);
    res?;
    let now = OffsetDateTime::now_utc();
    let tokens = bundle.tokens.as_ref();
    let refresh_end = tokens.and_then(|t| t.refresh_expires_at);
    if ctx.json {
        output::print_object(
            true,
            &json!({
                "profile": name.as_str(),
                "from_profile": bundle.profile_name.as_str(),
                "store": store.describe(),
                "grant": bundle.profile.grant.as_str(),
                "client_type": if bundle.profile.is_public() { "public" } else { "confidential" },
                "with_tokens": tokens.is_some(),
                "refresh_expires_at": output::rfc3339(refresh_end),
                "exported_at": output::rfc3339(Some(bundle.exported_at)),
                "exported_by": share::shown(&bundle.exported_by),
                "endpoints": bundle.endpoints().iter().map(|e| json!({
                    "what": e.what, "url": e.url.as_str(), "netsuite": e.netsuite,
                })).collect::<Vec<_>>(),
            }),
        );
    } else {
        println!(
            "imported profile {name} ({}) into {}, {}",
            grant_and_client(bundle.profile.grant, bundle.profile.is_public()),
            store.describe(),
            if tokens.is_some() {
                "with tokens"
            } else {
                "without tokens"
            }
        );
        println!(
            "exported by {} at {} (as the bundle says; age does not prove the sender)",
            share::shown(&bundle.exported_by),
            format_time(bundle.exported_at)
        );
        match (tokens, refresh_end) {
            (Some(_), Some(end)) => println!("refresh token ends {}", output::when(end, now)),
            (Some(t), None) if t.refresh_token.is_none() => {
                println!("no refresh token (access token only)")
            }
            _ => {}
        }
    }
    let login = format!("nsauth login --profile {name}");
    match (tokens, refresh_end) {
        (None, _) if bundle.profile.grant == GrantKind::AuthorizationCode => {
            ctx.note(format!("no tokens were shared; run: {login}"))
        }
        (Some(_), Some(end)) if end <= now => {
            eprintln!("warning: the shared refresh token has already expired; run: {login}")
        }
        _ => {}
    }
    Ok(Exit::Success)
}

/// Shows, before anything is stored, what the bundle would set up: its claims about the
/// sender and every endpoint, each field escaped for the terminal.
fn review(ctx: &Ctx, bundle: &share::Bundle) {
    let p = &bundle.profile;
    let mut lines = vec![format!(
        "bundle: profile {} for account {}, client {}, exported by {} at {} (unverified)",
        share::shown(bundle.profile_name.as_str()),
        p.account_id,
        share::shown(&p.client_id),
        share::shown(&bundle.exported_by),
        format_time(bundle.exported_at)
    )];
    if let Some(r) = &p.redirect_uri {
        lines.push(format!("  redirect URI  {}", share::shown(r.as_str())));
    }
    for e in bundle.endpoints() {
        lines.push(format!(
            "  {:<13} {}{}",
            e.what.split(' ').next().unwrap_or(e.what),
            share::shown(e.url.as_str()),
            if e.netsuite {
                ""
            } else {
                "   <- not a NetSuite host"
            }
        ));
    }
    // stdout, like the rest of the import report; JSON output carries the endpoints instead.
    if !ctx.json {
        println!("{}", lines.join("\n"));
    }
}
