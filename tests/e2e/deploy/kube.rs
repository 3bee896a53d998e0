//! The Kubernetes objects of `deploy/kubernetes`, typed as far as the tests rely on them.
//!
//! Unknown fields are refused everywhere, so a field added to a manifest must be added
//! here too, and a misspelt one (`completionsMode`) fails the test instead of being
//! silently dropped the way `kubectl apply` would reject it only at deploy time.

// The structs mirror the manifests field for field so that `deny_unknown_fields` accepts
// them; the tests assert on some of those fields only.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::Deserialize;

/// One YAML document, by its `kind`.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind")]
pub enum Document {
    /// `batch/v1` Job.
    Job(Job),
    /// `batch/v1` CronJob.
    CronJob(CronJob),
    /// `v1` ConfigMap.
    ConfigMap(ConfigMap),
    /// `v1` PersistentVolumeClaim.
    PersistentVolumeClaim(PersistentVolumeClaim),
    /// `v1` Secret.
    Secret(Secret),
}

/// `metadata` of a top-level object.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `metadata` of a template: labels only.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateMetadata {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A `batch/v1` Job.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Job {
    pub api_version: String,
    pub metadata: Metadata,
    pub spec: JobSpec,
}

/// `spec` of a Job, and of a CronJob's `jobTemplate`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobSpec {
    pub completion_mode: Option<String>,
    pub completions: Option<u32>,
    pub parallelism: Option<u32>,
    pub backoff_limit: Option<u32>,
    pub backoff_limit_per_index: Option<u32>,
    pub active_deadline_seconds: Option<u64>,
    pub ttl_seconds_after_finished: Option<u64>,
    pub pod_replacement_policy: Option<String>,
    pub pod_failure_policy: Option<PodFailurePolicy>,
    pub template: PodTemplate,
}

/// `podFailurePolicy`: rules tried in order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodFailurePolicy {
    pub rules: Vec<PodFailurePolicyRule>,
}

/// One rule of `podFailurePolicy`: an action and what it matches.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodFailurePolicyRule {
    pub action: String,
    pub on_exit_codes: Option<OnExitCodes>,
    pub on_pod_conditions: Option<Vec<PodConditionPattern>>,
}

/// `onExitCodes` of a rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OnExitCodes {
    pub container_name: Option<String>,
    pub operator: String,
    pub values: Vec<i32>,
}

/// One of a rule's `onPodConditions`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodConditionPattern {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: Option<String>,
}

/// `template`: the pods a Job creates.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodTemplate {
    pub metadata: Option<TemplateMetadata>,
    pub spec: PodSpec,
}

/// `spec` of a pod template.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodSpec {
    pub restart_policy: String,
    pub automount_service_account_token: Option<bool>,
    pub termination_grace_period_seconds: Option<u64>,
    pub security_context: Option<PodSecurityContext>,
    pub containers: Vec<Container>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

/// `securityContext` of a pod.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodSecurityContext {
    pub run_as_non_root: Option<bool>,
    pub run_as_user: Option<u64>,
    pub run_as_group: Option<u64>,
    pub fs_group: Option<u64>,
    pub seccomp_profile: Option<SeccompProfile>,
}

/// `seccompProfile`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeccompProfile {
    #[serde(rename = "type")]
    pub kind: String,
}

/// One container of a pod.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    pub image: String,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
    pub resources: Option<Resources>,
    pub security_context: Option<ContainerSecurityContext>,
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
}

/// One `env` entry: a literal `value` or a `valueFrom`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    pub value: Option<String>,
    pub value_from: Option<EnvVarSource>,
}

/// `valueFrom`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvVarSource {
    pub field_ref: Option<FieldRef>,
    pub secret_key_ref: Option<KeyRef>,
    pub config_map_key_ref: Option<KeyRef>,
}

/// `fieldRef`: the downward API.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldRef {
    pub field_path: String,
    pub api_version: Option<String>,
}

/// `secretKeyRef` or `configMapKeyRef`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRef {
    pub name: String,
    pub key: String,
    pub optional: Option<bool>,
}

/// Requests and limits; quantities are written as strings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub requests: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
}

/// `securityContext` of a container.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerSecurityContext {
    pub allow_privilege_escalation: Option<bool>,
    pub read_only_root_filesystem: Option<bool>,
    pub run_as_non_root: Option<bool>,
    pub capabilities: Option<Capabilities>,
}

/// `capabilities`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    #[serde(default)]
    pub drop: Vec<String>,
    #[serde(default)]
    pub add: Vec<String>,
}

/// One `volumeMounts` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    pub read_only: Option<bool>,
}

/// One `volumes` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    pub config_map: Option<NamedVolume>,
    pub persistent_volume_claim: Option<ClaimVolume>,
    pub empty_dir: Option<EmptyDir>,
}

/// A `configMap` volume source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedVolume {
    pub name: String,
}

/// A `persistentVolumeClaim` volume source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimVolume {
    pub claim_name: String,
    pub read_only: Option<bool>,
}

/// An `emptyDir` volume source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EmptyDir {
    pub size_limit: Option<String>,
    pub medium: Option<String>,
}

/// A `batch/v1` CronJob.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CronJob {
    pub api_version: String,
    pub metadata: Metadata,
    pub spec: CronJobSpec,
}

/// `spec` of a CronJob.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CronJobSpec {
    pub schedule: String,
    pub time_zone: Option<String>,
    pub concurrency_policy: Option<String>,
    pub starting_deadline_seconds: Option<u64>,
    pub successful_jobs_history_limit: Option<u32>,
    pub failed_jobs_history_limit: Option<u32>,
    pub job_template: JobTemplate,
}

/// `jobTemplate` of a CronJob.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobTemplate {
    pub metadata: Option<TemplateMetadata>,
    pub spec: JobSpec,
}

/// A `v1` ConfigMap.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigMap {
    pub api_version: String,
    pub metadata: Metadata,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

/// A `v1` PersistentVolumeClaim.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PersistentVolumeClaim {
    pub api_version: String,
    pub metadata: Metadata,
    pub spec: ClaimSpec,
}

/// `spec` of a PersistentVolumeClaim.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimSpec {
    pub access_modes: Vec<String>,
    pub storage_class_name: Option<String>,
    pub resources: ClaimResources,
}

/// `resources` of a PersistentVolumeClaim.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimResources {
    pub requests: BTreeMap<String, String>,
}

/// A Secret; the tests only accept one that carries no values.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Secret {
    pub api_version: String,
    pub metadata: Metadata,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    #[serde(default)]
    pub string_data: BTreeMap<String, String>,
}

impl Document {
    /// The kind and apiVersion, as written.
    pub fn kind_and_version(&self) -> (&'static str, &str) {
        match self {
            Document::Job(d) => ("Job", &d.api_version),
            Document::CronJob(d) => ("CronJob", &d.api_version),
            Document::ConfigMap(d) => ("ConfigMap", &d.api_version),
            Document::PersistentVolumeClaim(d) => ("PersistentVolumeClaim", &d.api_version),
            Document::Secret(d) => ("Secret", &d.api_version),
        }
    }
}

impl Container {
    /// The value of `--NAME=VALUE` among the args.
    pub fn flag(&self, name: &str) -> Option<&str> {
        let prefix = format!("--{name}=");
        self.args.iter().find_map(|a| a.strip_prefix(&prefix))
    }

    /// The env var called `name`.
    pub fn env_var(&self, name: &str) -> Option<&EnvVar> {
        self.env.iter().find(|e| e.name == name)
    }

    /// Where the volume called `volume` is mounted.
    pub fn mount_path(&self, volume: &str) -> Option<&str> {
        let mount = self.volume_mounts.iter().find(|m| m.name == volume)?;
        Some(&mount.mount_path)
    }
}
