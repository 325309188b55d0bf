//! `nsauth doctor`: check the current profile end to end, one line per check.

mod checks;
mod network;
mod profile;
#[cfg(test)]
mod tests;

use super::Ctx;
use crate::exit::Exit;
use checks::{Check, Status};
use nsauth_core::http::{Http, HttpConfig};
use nsauth_core::Error;
use std::time::Duration;

/// `nsauth doctor`
#[derive(clap::Args, Debug)]
pub struct DoctorArgs {}

pub async fn run(ctx: &Ctx, _args: DoctorArgs) -> Result<Exit, Error> {
    let name = ctx.name()?;
    let checks = match ctx.store() {
        Ok(store) => {
            // Doctor reports; it does not need the full retry budget of a refresh.
            let http = Http::with_config(HttpConfig {
                max_attempts: 2,
                deadline: Duration::from_secs(15),
                ..HttpConfig::default()
            })?;
            checks::run(store.as_ref(), &http, &name).await
        }
        Err(e) => vec![Check::from_error(
            "store",
            &e,
            "pass a valid --store URI (see: nsauth backends)",
        )],
    };
    if ctx.json {
        crate::output::print_json_list(
            "checks",
            checks
                .iter()
                .map(|c| serde_json::to_value(c).unwrap_or_default()),
        );
    } else {
        print_checks(&checks);
    }
    Ok(checks::outcome(&checks))
}

fn print_checks(checks: &[Check]) {
    let (mut warns, mut fails) = (0, 0);
    for c in checks {
        let mark = match c.status {
            Status::Ok => "✓",
            Status::Warn => {
                warns += 1;
                "!"
            }
            Status::Fail => {
                fails += 1;
                "✗"
            }
        };
        println!("{mark} {}: {}", c.check, c.message);
        if c.status != Status::Ok {
            if let Some(fix) = &c.fix {
                println!("    fix: {fix}");
            }
        }
    }
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    if fails == 0 && warns == 0 {
        println!("all {} checks passed", checks.len());
    } else {
        println!("{}, {}", plural(fails, "failure"), plural(warns, "warning"));
    }
}
