//! The deployment examples under `deploy/`: the Kubernetes manifests parsed into typed
//! objects and checked against what the tool needs (one shard per completion index,
//! credentials from a Secret, a clean stop before the deadline, a spec that loads), and the
//! single-machine cron script run on the real binary.

mod cron;
mod kube;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cloudauth_batch::spec::{self, Endpoint};

use kube::{ConfigMap, Container, Document, Job, JobSpec, PersistentVolumeClaim, PodSpec};

/// The downward API path of a pod's completion index in an Indexed Job.
const COMPLETION_INDEX_PATH: &str =
    "metadata.annotations['batch.kubernetes.io/job-completion-index']";

/// The credentials the tool reads from its environment.
const CREDENTIAL_VARS: [&str; 2] = [
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
];

/// The tool's own exit codes (see `run --help`).
const EXIT_CODES: std::ops::RangeInclusive<i32> = 1..=6;

/// The folder of the example files.
fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Every document of every `.yaml` file under `deploy/kubernetes`, with its file.
fn documents() -> Vec<(PathBuf, Document)> {
    let folder = deploy_dir().join("kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", folder.display());

    let mut all = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let parsed: Vec<Document> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(!parsed.is_empty(), "{} holds no document", file.display());
        all.extend(parsed.into_iter().map(|d| (file.clone(), d)));
    }
    all
}

/// The documents sorted by kind.
#[derive(Default)]
struct Manifests {
    jobs: Vec<Job>,
    cron_jobs: Vec<kube::CronJob>,
    config_maps: Vec<ConfigMap>,
    claims: Vec<PersistentVolumeClaim>,
    secrets: Vec<kube::Secret>,
}

impl Manifests {
    fn load() -> Manifests {
        let mut manifests = Manifests::default();
        for (_, document) in documents() {
            match document {
                Document::Job(d) => manifests.jobs.push(d),
                Document::CronJob(d) => manifests.cron_jobs.push(d),
                Document::ConfigMap(d) => manifests.config_maps.push(d),
                Document::PersistentVolumeClaim(d) => manifests.claims.push(d),
                Document::Secret(d) => manifests.secrets.push(d),
            }
        }
        manifests
    }

    /// The one Indexed Job.
    fn job(&self) -> &Job {
        assert_eq!(self.jobs.len(), 1, "expected one Job");
        &self.jobs[0]
    }

    /// The one CronJob.
    fn cron_job(&self) -> &kube::CronJob {
        assert_eq!(self.cron_jobs.len(), 1, "expected one CronJob");
        &self.cron_jobs[0]
    }

    /// Every Job spec: the Job's and the CronJob's template, with where each comes from.
    fn job_specs(&self) -> Vec<(String, &JobSpec)> {
        let jobs = self
            .jobs
            .iter()
            .map(|j| (format!("Job {}", j.metadata.name), &j.spec));
        let cron_jobs = self.cron_jobs.iter().map(|c| {
            (
                format!("CronJob {}", c.metadata.name),
                &c.spec.job_template.spec,
            )
        });
        jobs.chain(cron_jobs).collect()
    }

    fn config_map(&self, name: &str) -> &ConfigMap {
        let found = self.config_maps.iter().find(|c| c.metadata.name == name);
        found.unwrap_or_else(|| panic!("no ConfigMap {name} among the manifests"))
    }

    fn claim(&self, name: &str) -> &PersistentVolumeClaim {
        let found = self.claims.iter().find(|c| c.metadata.name == name);
        found.unwrap_or_else(|| panic!("no PersistentVolumeClaim {name} among the manifests"))
    }
}

/// The one container of a pod: the tool.
fn tool(pod: &PodSpec, at: &str) -> Container {
    assert_eq!(pod.containers.len(), 1, "{at}: expected one container");
    pod.containers[0].clone()
}

/// The N of `--shard=$(JOB_COMPLETION_INDEX)/N`.
fn shard_count(container: &Container, at: &str) -> u32 {
    let shard = container
        .flag("shard")
        .unwrap_or_else(|| panic!("{at}: no --shard=... among the args"));
    let (index, count) = shard
        .split_once('/')
        .unwrap_or_else(|| panic!("{at}: --shard={shard} is not I/N"));
    assert_eq!(index, "$(JOB_COMPLETION_INDEX)", "{at}: the shard index");
    count.parse().unwrap()
}

fn max_duration(container: &Container, at: &str) -> Duration {
    let text = container
        .flag("max-duration")
        .unwrap_or_else(|| panic!("{at}: no --max-duration=... among the args"));
    spec::units::parse_duration(text).unwrap()
}

#[test]
fn every_document_is_a_kind_the_deployment_expects() {
    let expected = [
        ("Job", "batch/v1"),
        ("CronJob", "batch/v1"),
        ("ConfigMap", "v1"),
        ("PersistentVolumeClaim", "v1"),
        ("Secret", "v1"),
    ];

    let documents = documents();

    for (file, document) in &documents {
        let (kind, version) = document.kind_and_version();
        let wanted = expected.iter().find(|(k, _)| *k == kind).unwrap().1;
        assert_eq!(version, wanted, "{}: {kind}", file.display());
    }
    for kind in ["Job", "CronJob", "ConfigMap", "PersistentVolumeClaim"] {
        let found = documents
            .iter()
            .any(|(_, d)| d.kind_and_version().0 == kind);
        assert!(found, "no {kind} under deploy/kubernetes");
    }
}

#[test]
fn each_completion_index_runs_one_shard_and_is_never_restarted_in_place() {
    let manifests = Manifests::load();

    for (at, job) in manifests.job_specs() {
        let container = tool(&job.template.spec, &at);
        let shards = shard_count(&container, &at);
        assert_eq!(job.completion_mode.as_deref(), Some("Indexed"), "{at}");
        assert_eq!(
            job.completions,
            Some(shards),
            "{at}: completions vs --shard"
        );
        assert_eq!(
            job.parallelism,
            Some(shards),
            "{at}: parallelism vs --shard"
        );
        assert_eq!(job.template.spec.restart_policy, "Never", "{at}");

        let index = container.env_var("JOB_COMPLETION_INDEX");
        let field = index
            .and_then(|e| e.value_from.as_ref())
            .and_then(|from| from.field_ref.as_ref())
            .unwrap_or_else(|| panic!("{at}: JOB_COMPLETION_INDEX is not from the downward API"));
        assert_eq!(field.field_path, COMPLETION_INDEX_PATH, "{at}");
    }
}

#[test]
fn retries_are_bounded_and_the_failure_policy_names_the_tools_exit_codes() {
    let manifests = Manifests::load();

    for (at, job) in manifests.job_specs() {
        let container = tool(&job.template.spec, &at);
        let limit = job.backoff_limit.unwrap_or(6);
        assert!(limit <= 6, "{at}: backoffLimit {limit} is not small");
        let Some(policy) = &job.pod_failure_policy else {
            continue;
        };
        for rule in &policy.rules {
            check_rule(rule, job, &container, &at);
        }
    }
}

/// A pod failure rule that Kubernetes accepts and that matches the tool's exit codes.
fn check_rule(rule: &kube::PodFailurePolicyRule, job: &JobSpec, tool: &Container, at: &str) {
    let actions = ["Ignore", "FailJob", "FailIndex", "Count"];
    assert!(actions.contains(&rule.action.as_str()), "{at}: {rule:?}");
    if rule.action == "FailIndex" {
        assert!(
            job.backoff_limit_per_index.is_some(),
            "{at}: FailIndex needs backoffLimitPerIndex"
        );
    }
    let Some(codes) = &rule.on_exit_codes else {
        assert!(
            rule.on_pod_conditions.is_some(),
            "{at}: a rule that matches nothing"
        );
        return;
    };
    assert!(
        rule.on_pod_conditions.is_none(),
        "{at}: a rule may match exit codes or conditions, not both"
    );
    if let Some(name) = &codes.container_name {
        assert_eq!(*name, tool.name, "{at}: the rule names another container");
    }
    assert_eq!(codes.operator, "In", "{at}");
    assert!(
        codes.values.is_sorted(),
        "{at}: Kubernetes wants the values sorted"
    );
    for code in &codes.values {
        assert!(
            EXIT_CODES.contains(code),
            "{at}: {code} is not an exit code of the tool"
        );
    }
}

#[test]
fn the_cron_job_runs_the_same_job_and_never_two_at_once() {
    let manifests = Manifests::load();
    let cron = &manifests.cron_job().spec;

    assert_eq!(cron.concurrency_policy.as_deref(), Some("Forbid"));
    assert!(cron.starting_deadline_seconds.is_some());
    assert!(cron.successful_jobs_history_limit.is_some());
    assert!(cron.failed_jobs_history_limit.is_some());
    assert_eq!(
        cron.schedule.split_whitespace().count(),
        5,
        "{}",
        cron.schedule
    );

    // The history limits take the place of the one-off Job's clean-up.
    let mut one_off = manifests.job().spec.clone();
    one_off.ttl_seconds_after_finished = None;
    assert_eq!(
        cron.job_template.spec, one_off,
        "the CronJob's Job differs from indexed-job.yaml"
    );
}

#[test]
fn credentials_come_from_a_secret_and_never_from_a_literal() {
    let manifests = Manifests::load();

    for (at, job) in manifests.job_specs() {
        let container = tool(&job.template.spec, &at);
        for name in CREDENTIAL_VARS {
            let var = container
                .env_var(name)
                .unwrap_or_else(|| panic!("{at}: no {name}"));
            let from_secret = var
                .value_from
                .as_ref()
                .and_then(|f| f.secret_key_ref.as_ref());
            assert!(
                from_secret.is_some(),
                "{at}: {name} is not from a secretKeyRef"
            );
        }
        for var in &container.env {
            let sensitive = ["KEY", "SECRET", "TOKEN", "PASSWORD"];
            if sensitive.iter().any(|word| var.name.contains(word)) {
                assert!(
                    var.value.is_none(),
                    "{at}: {} has a literal value",
                    var.name
                );
            }
        }
    }
    for secret in &manifests.secrets {
        let empty = secret.data.is_empty() && secret.string_data.is_empty();
        assert!(
            empty,
            "Secret {} holds values in a manifest",
            secret.metadata.name
        );
    }
}

#[test]
fn the_tool_stops_itself_before_kubernetes_stops_the_job() {
    let manifests = Manifests::load();

    for (at, job) in manifests.job_specs() {
        let container = tool(&job.template.spec, &at);
        let deadline = job.active_deadline_seconds.map(Duration::from_secs);
        let deadline = deadline.unwrap_or_else(|| panic!("{at}: no activeDeadlineSeconds"));
        let stop = max_duration(&container, &at);
        assert!(
            stop < deadline,
            "{at}: --max-duration {stop:?} >= deadline {deadline:?}"
        );

        // After --max-duration the tool still finishes what is in flight and writes the
        // report; give it at least as long as it would get after a SIGTERM.
        let grace = job
            .template
            .spec
            .termination_grace_period_seconds
            .unwrap_or(30);
        let margin = deadline - stop;
        assert!(
            margin >= Duration::from_secs(grace),
            "{at}: only {margin:?} to wrap up"
        );
    }
}

#[test]
fn the_pipeline_spec_loads_and_keeps_its_files_on_the_shared_volume() {
    let manifests = Manifests::load();
    let temp = tempfile::tempdir().unwrap();

    for (at, job) in manifests.job_specs() {
        let pod = &job.template.spec;
        let container = tool(pod, &at);
        let (spec_file, text) = mounted_spec(&manifests, pod, &container, &at);
        assert_eq!(container.args[..2], ["run".to_string(), spec_file], "{at}");
        let data = mounted_claim(&manifests, pod, &container, &at);

        // Written elsewhere, the spec still names the same absolute paths.
        let copy = temp.path().join("pipeline.yaml");
        std::fs::write(&copy, text).unwrap();
        let pipeline = spec::load(&copy).unwrap_or_else(|e| panic!("{at}: {e}"));
        let url = "https://cloudauth.aliyuncs.com".to_string();
        assert_eq!(pipeline.service.endpoint, Endpoint::Url(url), "{at}");
        for file in [
            &pipeline.ledger,
            &pipeline.report.path,
            &pipeline.source.path,
        ] {
            assert!(
                file.starts_with(&data),
                "{at}: {} is not on the volume",
                file.display()
            );
        }
    }
}

/// The spec's path in the container, and its text from the ConfigMap mounted there.
fn mounted_spec(
    manifests: &Manifests,
    pod: &PodSpec,
    container: &Container,
    at: &str,
) -> (String, String) {
    let volume = pod.volumes.iter().find(|v| v.config_map.is_some());
    let volume = volume.unwrap_or_else(|| panic!("{at}: no ConfigMap volume"));
    let config_map = manifests.config_map(&volume.config_map.as_ref().unwrap().name);
    let mount = container.mount_path(&volume.name);
    let mount = mount.unwrap_or_else(|| panic!("{at}: volume {} is not mounted", volume.name));

    assert_eq!(
        config_map.data.len(),
        1,
        "{at}: expected the spec alone in the ConfigMap"
    );
    let (key, text) = config_map.data.iter().next().unwrap();
    (format!("{mount}/{key}"), text.clone())
}

/// Where the ReadWriteMany claim is mounted.
fn mounted_claim(manifests: &Manifests, pod: &PodSpec, container: &Container, at: &str) -> PathBuf {
    let volume = pod
        .volumes
        .iter()
        .find(|v| v.persistent_volume_claim.is_some());
    let volume = volume.unwrap_or_else(|| panic!("{at}: no PersistentVolumeClaim volume"));
    let claim_name = &volume.persistent_volume_claim.as_ref().unwrap().claim_name;
    let claim = manifests.claim(claim_name);
    let modes = &claim.spec.access_modes;
    assert_eq!(
        *modes,
        ["ReadWriteMany"],
        "{at}: every shard and retry must reach it"
    );

    let mount = container.mount_path(&volume.name);
    PathBuf::from(mount.unwrap_or_else(|| panic!("{at}: volume {} is not mounted", volume.name)))
}

#[test]
fn pods_run_unprivileged_within_a_modest_memory_limit() {
    let manifests = Manifests::load();

    for (at, job) in manifests.job_specs() {
        let pod = &job.template.spec;
        let container = tool(pod, &at);
        let pod_context = pod.security_context.as_ref().unwrap();
        assert_eq!(pod_context.run_as_non_root, Some(true), "{at}");
        assert_ne!(pod_context.run_as_user, Some(0), "{at}");
        let context = container.security_context.as_ref().unwrap();
        assert_eq!(context.allow_privilege_escalation, Some(false), "{at}");
        let capabilities = context.capabilities.as_ref().unwrap();
        assert_eq!(capabilities.drop, ["ALL"], "{at}");

        let resources = container.resources.as_ref().unwrap();
        let limit = mebibytes(&resources.limits["memory"]);
        // The tool aims at less than 200 MB; a limit below that would kill it at its peak.
        assert!(
            (200..=1024).contains(&limit),
            "{at}: memory limit {limit} Mi"
        );
        assert!(mebibytes(&resources.requests["memory"]) <= limit, "{at}");
    }
}

/// A memory quantity written in Mi or Gi, in MiB.
fn mebibytes(quantity: &str) -> u64 {
    if let Some(n) = quantity.strip_suffix("Gi") {
        return n.parse::<u64>().unwrap() * 1024;
    }
    let n = quantity.strip_suffix("Mi");
    n.unwrap_or_else(|| panic!("write {quantity} in Mi or Gi"))
        .parse()
        .unwrap()
}

#[test]
fn every_flag_the_manifests_pass_is_one_the_tool_takes() {
    let manifests = Manifests::load();
    for (at, job) in manifests.job_specs() {
        let container = tool(&job.template.spec, &at);
        let command = container
            .args
            .iter()
            .find(|a| !a.starts_with('-') && !a.contains('/'))
            .unwrap_or_else(|| panic!("{at}: no subcommand among the args"));
        let help = crate::support::binary()
            .args([command.as_str(), "--help"])
            .output()
            .unwrap();
        assert!(help.status.success(), "{at}: {command} is not a subcommand");
        let help = String::from_utf8_lossy(&help.stdout);
        for flag in container.args.iter().filter(|a| a.starts_with("--")) {
            let name = flag.split('=').next().unwrap();
            assert!(help.contains(name), "{at}: {command} takes no {name}");
        }
    }
}
