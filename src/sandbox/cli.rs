//! The `sandbox` command: starts an emulator from flags and serves until Ctrl-C.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::cloudauth::{Action, MaterialType};

use super::authority::Authority;
use super::config::{AccessKey, KeyState, SandboxConfig, UnknownIds};
use super::{Faults, Sandbox};

/// Runs a local emulator of the Cloudauth API.
///
/// It accepts the documented test key (sandbox-test-id) unless --access-key is given.
///
/// Example: cloudauth-batch sandbox --authority samples/authority.csv --review-share 0.1
/// --quota SubmitMaterials=20 --error-share 0.02
#[derive(Debug, Clone, clap::Args)]
pub struct SandboxArgs {
    /// Address to listen on; loopback only.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// An accepted key, ID:SECRET, optionally followed by :inactive, :no-permission or
    /// :ram-denied to provoke those errors. Repeatable. Default: the test key.
    #[arg(long = "access-key", value_name = "ID:SECRET[:STATE]", value_parser = parse_key)]
    pub access_keys: Vec<AccessKey>,
    /// The authority data set: a CSV with id_number,name,portrait. Default: empty.
    #[arg(long, value_name = "PATH")]
    pub authority: Option<PathBuf>,
    /// A scenario and its required material types, e.g. RPMin=Name,IdentificationNumber.
    /// Repeatable; replaces the defaults (RPBasic, RPBasicTest, RPMin).
    #[arg(long = "biz", value_name = "NAME=Type,Type", value_parser = parse_biz)]
    pub biz: Vec<(String, Vec<MaterialType>)>,
    /// Seconds a VerifyToken stays valid.
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    pub token_lifetime: u64,
    /// Share of submissions (0 to 1) answered StatusCode 0 and decided after --review-delay.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub review_share: f64,
    /// Milliseconds a submission stays in review.
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    pub review_delay: u64,
    /// Authority comparison score needed to pass.
    #[arg(long, value_name = "F", default_value_t = 80.0)]
    pub pass_threshold: f64,
    /// ID numbers missing from the authority data set: reject (RealNameCheckFail) or
    /// accept (for generated data).
    #[arg(long, value_name = "reject|accept", default_value = "reject", value_parser = parse_unknown_ids)]
    pub unknown_ids: UnknownIds,
    /// Calls per second admitted for an action, e.g. SubmitMaterials=20. Repeatable.
    /// Default: unlimited.
    #[arg(long = "quota", value_name = "Action=N", value_parser = parse_quota)]
    pub quotas: Vec<(Action, u32)>,
    /// Seed of every random decision (faults, review).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Added latency, MEAN or MEAN±JITTER (also MEAN+-JITTER), in milliseconds.
    #[arg(long, value_name = "MEAN[±JITTER]", default_value = "0", value_parser = parse_latency)]
    pub latency_ms: (u64, u64),
    /// Share of calls answered 500 InternalError or 503 ServiceUnavailable.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub error_share: f64,
    /// Share of SubmitMaterials calls answered 500 Error.SubmitMaterialsError.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub submit_error_share: f64,
    /// Share of calls answered only after --slow-ms (SubmitMaterials commits first).
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub slow_share: f64,
    /// Delay of a slow answer, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 15_000)]
    pub slow_ms: u64,
    /// Share of calls committed and then left unanswered (the connection is closed).
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub drop_after_commit_share: f64,
    /// Let http(s):// materials be fetched from hosts other than loopback. Off by default.
    #[arg(long)]
    pub allow_remote_fetch: bool,
}

/// Starts the sandbox and serves until Ctrl-C.
pub fn run(args: SandboxArgs) -> anyhow::Result<()> {
    let config = config(args)?;
    let key_ids: Vec<String> = config.access_keys.iter().map(|k| k.id.clone()).collect();
    let sandbox = Sandbox::start(config)?;
    announce(&sandbox.url(), &key_ids);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not wait for Ctrl-C")?;
    runtime
        .block_on(tokio::signal::ctrl_c())
        .context("could not wait for Ctrl-C")?;
    sandbox.shutdown();
    Ok(())
}

// The command's one result is the address to point clients at; it goes to stdout.
#[allow(clippy::print_stdout)]
fn announce(url: &str, key_ids: &[String]) {
    println!("sandbox listening on {url}");
    println!("access key ids: {}", key_ids.join(", "));
}

/// Turns the flags into a configuration.
pub fn config(args: SandboxArgs) -> anyhow::Result<SandboxConfig> {
    let mut config = SandboxConfig {
        listen: args.listen,
        token_lifetime: Duration::from_secs(args.token_lifetime),
        review_share: args.review_share,
        review_delay: Duration::from_millis(args.review_delay),
        pass_threshold: args.pass_threshold,
        unknown_ids: args.unknown_ids,
        quotas: args.quotas.into_iter().collect(),
        seed: args.seed,
        allow_remote_fetch: args.allow_remote_fetch,
        faults: Faults {
            latency_mean_ms: args.latency_ms.0,
            latency_jitter_ms: args.latency_ms.1,
            error_share: args.error_share,
            submit_error_share: args.submit_error_share,
            slow_share: args.slow_share,
            slow_ms: args.slow_ms,
            drop_after_commit_share: args.drop_after_commit_share,
            ..Faults::default()
        },
        ..SandboxConfig::default()
    };
    if !args.access_keys.is_empty() {
        config.access_keys = args.access_keys;
    }
    if !args.biz.is_empty() {
        config.biz_requirements = args.biz.into_iter().collect::<BTreeMap<_, _>>();
    }
    if let Some(path) = args.authority {
        config.authority = Authority::load(&path)?;
    }
    Ok(config)
}

fn parse_key(text: &str) -> Result<AccessKey, String> {
    let mut parts = text.splitn(3, ':');
    let (Some(id), Some(secret)) = (parts.next(), parts.next()) else {
        return Err("expected ID:SECRET".to_string());
    };
    if id.is_empty() || secret.is_empty() {
        return Err("expected ID:SECRET with neither part empty".to_string());
    }
    let state = match parts.next() {
        None => KeyState::Active,
        Some("inactive") => KeyState::Inactive,
        Some("no-permission") => KeyState::NoPermission,
        Some("ram-denied") => KeyState::RamDenied,
        Some(other) => {
            return Err(format!(
                "unknown key state {other:?}; expected inactive, no-permission or ram-denied"
            ));
        }
    };
    Ok(AccessKey {
        id: id.to_string(),
        secret: secret.to_string(),
        state,
    })
}

fn parse_biz(text: &str) -> Result<(String, Vec<MaterialType>), String> {
    let (name, kinds) = text.split_once('=').ok_or("expected NAME=Type,Type")?;
    let kinds = kinds
        .split(',')
        .filter(|k| !k.is_empty())
        .map(|k| k.trim().parse::<MaterialType>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((name.to_string(), kinds))
}

fn parse_quota(text: &str) -> Result<(Action, u32), String> {
    let (action, limit) = text.split_once('=').ok_or("expected Action=N")?;
    let action = action.parse::<Action>().map_err(|e| e.to_string())?;
    let limit = limit.parse::<u32>().map_err(|e| e.to_string())?;
    Ok((action, limit))
}

fn parse_latency(text: &str) -> Result<(u64, u64), String> {
    let (mean, jitter) = match text.split_once('±').or_else(|| text.split_once("+-")) {
        Some((mean, jitter)) => (mean, jitter),
        None => (text, "0"),
    };
    let number = |s: &str| s.trim().parse::<u64>().map_err(|e| format!("{s:?}: {e}"));
    Ok((number(mean)?, number(jitter)?))
}

fn parse_unknown_ids(text: &str) -> Result<UnknownIds, String> {
    match text {
        "reject" => Ok(UnknownIds::Reject),
        "accept" => Ok(UnknownIds::Accept),
        other => Err(format!("{other:?}: expected reject or accept")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: SandboxArgs,
    }

    #[test]
    fn flags_become_a_configuration() {
        let wrapper = Wrapper::try_parse_from([
            "x",
            "--access-key",
            "a:b:ram-denied",
            "--biz",
            "RPMin=Name,IdentificationNumber",
            "--quota",
            "GetStatus=5",
            "--latency-ms",
            "100±20",
            "--unknown-ids",
            "accept",
        ])
        .unwrap();
        let config = config(wrapper.args).unwrap();
        assert_eq!(config.access_keys[0].state, KeyState::RamDenied);
        assert_eq!(config.biz_requirements.len(), 1);
        assert_eq!(config.quotas.get(&Action::GetStatus), Some(&5));
        assert_eq!(config.faults.latency_jitter_ms, 20);
        assert_eq!(config.unknown_ids, UnknownIds::Accept);
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(parse_key("only-id").is_err());
        assert!(parse_key("a:b:sleepy").is_err());
        assert!(parse_quota("Nope=3").is_err());
        assert!(parse_biz("X=Face").is_err());
        assert_eq!(parse_latency("50+-5"), Ok((50, 5)));
    }
}
