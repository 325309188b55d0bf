//! `nsauth profile set|list|show|delete`.

use super::Ctx;
use crate::cli::{GrantArg, ProfileCmd, ProfileSetArgs};
use crate::exit::Exit;
use crate::output;
use nsauth_core::account::AccountId;
use nsauth_core::m2m::rotate;
use nsauth_core::profile::{EndpointOverrides, GrantKind, Profile};
use nsauth_core::secret::{ClientSecret, PrivateKeyPem};
use nsauth_core::store::{self, Precondition, Record};
use nsauth_core::{Error, ProfileName, StoreError};
use std::io::Read;
use url::Url;

pub async fn run(ctx: &Ctx, cmd: ProfileCmd) -> Result<Exit, Error> {
    match cmd {
        ProfileCmd::Set(args) => set(ctx, *args).await,
        ProfileCmd::List => list(ctx).await,
        ProfileCmd::Show { name } => show(ctx, name.as_deref().unwrap_or(&ctx.profile)).await,
        ProfileCmd::Delete { name } => delete(ctx, &name).await,
    }
}

fn parse_url(flag: &str, v: &str) -> Result<Url, Error> {
    let shown: String = v.chars().take(80).flat_map(char::escape_default).collect();
    Url::parse(v)
        .map_err(|e| Error::Invalid(format!("--{flag} {shown:?} is not a valid URL ({e})")))
}

fn read_secret_stdin() -> Result<ClientSecret, Error> {
    let mut s = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut s)
        .map_err(|e| Error::Invalid(format!("cannot read the client secret from stdin: {e}")))?;
    let t = s.trim();
    if t.is_empty() {
        return Err(Error::Invalid(
            "--client-secret-stdin was given but stdin is empty; pipe the secret in".into(),
        ));
    }
    Ok(ClientSecret::new(t))
}

fn read_private_key(path: &std::path::Path) -> Result<PrivateKeyPem, Error> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::Invalid(format!("cannot read private key {}: {e}", path.display())))?;
    if meta.len() > 64 * 1024 {
        return Err(Error::Invalid(format!(
            "{} is too large to be a PEM private key",
            path.display()
        )));
    }
    let pem =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Error::Invalid(format!("cannot read private key {}: {e}", path.display()))
        })?);
    let key = PrivateKeyPem::new(pem.as_str());
    nsauth_core::m2m::inspect_private_key(&key)?;
    Ok(key)
}

/// Builds the profile from flags over an existing one (if any). Nothing is stored until
/// every input is valid.
fn build(args: &ProfileSetArgs, existing: Option<&Profile>) -> Result<Profile, Error> {
    let account_id = match (&args.account_id, existing) {
        (Some(a), _) => AccountId::parse(a)?,
        (None, Some(p)) => p.account_id.clone(),
        (None, None) => {
            return Err(Error::Invalid(
                "a new profile needs --account-id (e.g. 1234567 or 1234567_SB1)".into(),
            ))
        }
    };
    let client_id = match (&args.client_id, existing) {
        (Some(c), _) => c.clone(),
        (None, Some(p)) => p.client_id.clone(),
        (None, None) => {
            return Err(Error::Invalid(
                "a new profile needs --client-id (from the integration record)".into(),
            ))
        }
    };
    let grant = match (args.grant, existing) {
        (Some(GrantArg::AuthorizationCode), _) => GrantKind::AuthorizationCode,
        (Some(GrantArg::ClientCredentials), _) => GrantKind::ClientCredentials,
        (None, Some(p)) => p.grant,
        (None, None) => GrantKind::AuthorizationCode,
    };
    let client_secret = if args.client_secret_stdin {
        Some(read_secret_stdin()?)
    } else if let Some(v) = std::env::var("NSAUTH_CLIENT_SECRET")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        Some(ClientSecret::new(v.trim()))
    } else if args.public {
        None
    } else {
        existing.and_then(|p| p.client_secret.clone())
    };
    let redirect_uri = match &args.redirect_uri {
        Some(r) => Some(parse_url("redirect-uri", r)?),
        None => existing.and_then(|p| p.redirect_uri.clone()),
    };
    let scopes = if args.scopes.is_empty() {
        existing.map(|p| p.scopes.clone()).unwrap_or_default()
    } else {
        args.scopes
            .iter()
            .flat_map(|s| s.split([' ', ',']))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let private_key = match &args.private_key_file {
        Some(path) => Some(read_private_key(path)?),
        None => existing.and_then(|p| p.private_key.clone()),
    };
    let cert_path = args.certificate_file.clone().or_else(|| {
        args.private_key_file
            .as_ref()
            .and_then(|k| k.parent().map(|d| d.join("certificate.pem")))
            .filter(|p| p.exists())
    });
    let certificate_pem = match cert_path {
        Some(path) => {
            let pem = std::fs::read_to_string(&path).map_err(|e| {
                Error::Invalid(format!("cannot read certificate {}: {e}", path.display()))
            })?;
            nsauth_core::m2m::inspect_certificate(&pem)?;
            if let Some(key) = &private_key {
                if !nsauth_core::m2m::certificate_matches_key(&pem, key)? {
                    return Err(Error::Invalid(format!("{} does not belong to the private key; pass the matching --certificate-file", path.display())));
                }
            }
            Some(pem)
        }
        None => existing.and_then(|p| p.certificate_pem.clone()),
    };
    let mut endpoints = existing.map(|p| p.endpoints.clone()).unwrap_or_default();
    if let Some(b) = &args.base_url {
        endpoints = EndpointOverrides {
            base_url: Some(parse_url("base-url", b)?),
            ..Default::default()
        };
    }
    for (flag, val, slot) in [
        (
            "authorize-url",
            &args.authorize_url,
            &mut endpoints.authorize_url,
        ),
        ("token-url", &args.token_url, &mut endpoints.token_url),
        ("revoke-url", &args.revoke_url, &mut endpoints.revoke_url),
        ("rest-url", &args.rest_url, &mut endpoints.rest_url),
    ] {
        if let Some(v) = val {
            *slot = Some(parse_url(flag, v)?);
        }
    }
    let profile = Profile {
        account_id,
        client_id,
        client_secret,
        redirect_uri,
        scopes,
        grant,
        certificate_id: args
            .certificate_id
            .clone()
            .or_else(|| existing.and_then(|p| p.certificate_id.clone())),
        private_key,
        certificate_pem,
        endpoints,
        refresh_token_validity_hours: args
            .refresh_token_validity
            .or_else(|| existing.and_then(|p| p.refresh_token_validity_hours)),
    };
    profile.validate().map_err(Error::Invalid)?;
    Ok(profile)
}

async fn set(ctx: &Ctx, args: ProfileSetArgs) -> Result<Exit, Error> {
    let name = ProfileName::parse(&args.name)?;
    // Validate what we can before touching the store at all.
    if let Some(a) = &args.account_id {
        AccountId::parse(a)?;
    }
    let store = ctx.store()?;
    let existing = store.load(&name).await?;
    let profile = build(&args, existing.as_ref().map(|v| &v.record.profile))?;
    match existing {
        None => {
            store
                .put(&name, &Record::new(profile), Precondition::Create)
                .await?;
            ctx.note(format!("profile {name} created in {}", store.describe()));
            super::audit::record(
                ctx,
                store.as_ref(),
                &nsauth_core::audit::AuditEvent::new(
                    "profile-set",
                    name.as_str(),
                    &store.describe(),
                )
                .detail("created"),
            );
        }
        Some(_) => {
            let switched = store::update(store.as_ref(), &name, |rec| {
                let identity_changed = rec.profile.account_id != profile.account_id
                    || rec.profile.client_id != profile.client_id
                    || rec.profile.grant != profile.grant;
                if identity_changed {
                    // Tokens of another account or client are useless here.
                    rec.tokens = None;
                    rec.pending.clear();
                }
                let old_id = rec.profile.certificate_id.clone();
                rec.profile = profile.clone();
                rec.last_failure = None;
                let key_given = args.private_key_file.is_some();
                Ok(rotate::switch_certificate(
                    rec,
                    old_id.as_deref(),
                    key_given,
                ))
            })
            .await?;
            match switched.0 {
                rotate::Switch::ToNext => ctx.note(format!("profile {name}: switched to the rotated certificate; the previous key is kept until: nsauth m2m rotate --profile {name} --finish")),
                rotate::Switch::BackToPrevious => ctx.note(format!("profile {name}: switched back to the previous certificate")),
                rotate::Switch::Unchanged => {}
            }
            ctx.note(format!("profile {name} updated in {}", store.describe()));
            super::audit::record(
                ctx,
                store.as_ref(),
                &nsauth_core::audit::AuditEvent::new(
                    "profile-set",
                    name.as_str(),
                    &store.describe(),
                )
                .detail("updated"),
            );
        }
    }
    Ok(Exit::Success)
}

async fn list(ctx: &Ctx) -> Result<Exit, Error> {
    let store = ctx.store()?;
    let names = store.list().await?;
    if ctx.json {
        output::print_json_list("profiles", names.iter().map(|n| n.as_str().into()));
    } else {
        for n in names {
            println!("{n}");
        }
    }
    Ok(Exit::Success)
}

async fn show(ctx: &Ctx, name: &str) -> Result<Exit, Error> {
    let name = ProfileName::parse(name)?;
    let store = ctx.store()?;
    let v = store::load_existing(store.as_ref(), &name).await?;
    output::print_object(
        ctx.json,
        &output::profile_json(name.as_str(), &v.record.profile),
    );
    Ok(Exit::Success)
}

async fn delete(ctx: &Ctx, name: &str) -> Result<Exit, Error> {
    let name = ProfileName::parse(name)?;
    let store = ctx.store()?;
    let res = store.delete(&name, None).await;
    super::audit::record(
        ctx,
        store.as_ref(),
        &nsauth_core::audit::AuditEvent::new("profile-delete", name.as_str(), &store.describe())
            .outcome(crate::exit::audit_outcome(
                &res.as_ref()
                    .map(|_| ())
                    .map_err(|e| Error::Store(clone_kind(e))),
            )),
    );
    match res {
        Ok(()) => {
            ctx.note(format!("profile {name} deleted (tokens were not revoked; use nsauth revoke first to end them at NetSuite)"));
            Ok(Exit::Success)
        }
        Err(StoreError::NotFound(_)) => Err(Error::Invalid(format!(
            "profile {name} does not exist in {}",
            store.describe()
        ))),
        Err(e) => Err(e.into()),
    }
}

/// A secret-free copy of a store error's kind and message, for the audit record.
fn clone_kind(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound(n) => StoreError::NotFound(n.clone()),
        StoreError::Conflict(n) => StoreError::Conflict(n.clone()),
        other => StoreError::Unavailable {
            message: other.to_string(),
            retryable: other.is_retryable(),
        },
    }
}
