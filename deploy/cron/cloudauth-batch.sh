#!/usr/bin/env bash
# Runs one cloudauth-batch pipeline from cron on a single machine, and says in one line
# what its exit code means.
#
#   cloudauth-batch.sh SPEC [more `run` arguments...]
#
# No flock around the run: the tool locks its own ledger, and a run started while the
# previous one still works exits at once with code 6, which is logged as a skipped run.
#
# Settings, from the environment (all optional):
#   CLOUDAUTH_ENV_FILE      credentials, KEY=value lines: ALIBABA_CLOUD_ACCESS_KEY_ID,
#                           ALIBABA_CLOUD_ACCESS_KEY_SECRET and optionally
#                           ALIBABA_CLOUD_SECURITY_TOKEN. It must belong to the user running
#                           this script and be readable by nobody else (chmod 600).
#                           Default: /etc/cloudauth-batch/credentials.env
#   CLOUDAUTH_LOG_FILE      where the tool's output and the outcome lines go.
#                           Default: /var/log/cloudauth-batch/run.log (rotate it with logrotate)
#   CLOUDAUTH_MAX_DURATION  how long a run may take new rows before it stops cleanly and
#                           leaves the rest to the next run. Default: 5h
#   CLOUDAUTH_BATCH         the binary. Default: cloudauth-batch from PATH
#
# Exit status: the tool's own (see `cloudauth-batch run --help`); 2 when this script cannot
# start it. Outcomes that need a person (2, 3, 4 and unknown codes) are also written to
# stderr, which cron mails to MAILTO; the others only go to the log.

set -u -o pipefail

env_file=${CLOUDAUTH_ENV_FILE:-/etc/cloudauth-batch/credentials.env}
log_file=${CLOUDAUTH_LOG_FILE:-/var/log/cloudauth-batch/run.log}
max_duration=${CLOUDAUTH_MAX_DURATION:-5h}
binary=${CLOUDAUTH_BATCH:-cloudauth-batch}

# One timestamped line in the log.
log() {
    printf '%s cloudauth-batch.sh: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$log_file"
}

# A line in the log that also reaches the operator through cron's mail.
alert() {
    log "$*"
    printf 'cloudauth-batch.sh: %s\n' "$*" >&2
}

# Exports the credentials of the env file. The file is parsed, not sourced, so that it can
# hold nothing but these variables, and its values never pass through a shell expansion.
load_credentials() {
    local mode line key
    if [[ ! -f $env_file ]]; then
        alert "no credentials file $env_file"
        return 1
    fi
    # GNU stat: this script is for Linux hosts.
    mode=$(stat -c '%a' -- "$env_file") || return 1
    if [[ ! -O $env_file || ($mode != 600 && $mode != 400) ]]; then
        alert "$env_file must belong to $(id -un) with mode 600 (it has $mode); not running"
        return 1
    fi
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%$'\r'}
        [[ -z $line || $line == '#'* ]] && continue
        key=${line%%=*}
        case $key in
        ALIBABA_CLOUD_ACCESS_KEY_ID | ALIBABA_CLOUD_ACCESS_KEY_SECRET | ALIBABA_CLOUD_SECURITY_TOKEN)
            export "$key=${line#*=}"
            ;;
        *)
            # The key name only: the line may hold a secret.
            log "ignoring unknown key ${key:0:40} in $env_file"
            ;;
        esac
    done <"$env_file"
}

# The operator's line for an exit code of `cloudauth-batch run`.
describe() {
    case $1 in
    0) echo "done: every row has a verdict" ;;
    1) echo "done: some rows ended without a verdict (error, skipped or pending); see the report" ;;
    2) echo "FAILED: the spec, the arguments, the input or the ledger are unusable; see the log" ;;
    3) echo "FAILED: the service refused the credentials or permissions; check $env_file and the RAM policy" ;;
    4) echo "STOPPED: too many rows failed on service or network errors (breaker); the next run resumes" ;;
    5) echo "paused: --max-duration reached or interrupted; the next run continues from the ledger" ;;
    6) echo "skipped: another run still holds the ledger" ;;
    *) echo "FAILED: unexpected exit code (killed or crashed?); the next run resumes from the ledger" ;;
    esac
}

main() {
    if (($# < 1)); then
        echo 'usage: cloudauth-batch.sh SPEC [more run arguments...]' >&2
        exit 2
    fi
    local spec=$1
    shift
    mkdir -p -- "$(dirname -- "$log_file")" || exit 2
    load_credentials || exit 2

    log "starting $spec, taking rows for at most $max_duration"
    "$binary" run "$spec" --no-progress --max-duration "$max_duration" "$@" >>"$log_file" 2>&1
    local code=$?

    case $code in
    0 | 1 | 5 | 6) log "$(describe "$code") (exit $code)" ;;
    *) alert "$(describe "$code") (exit $code)" ;;
    esac
    exit "$code"
}

main "$@"
