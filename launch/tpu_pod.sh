#!/usr/bin/env bash
# Train biggan_jax on a Cloud TPU pod slice (v4-32, v5litepod-16, ...: several hosts), from your
# workstation: the same command runs on every worker, each a JAX process.
#
# Usage:
#   launch/tpu_pod.sh --tpu=NAME --zone=ZONE [--project=PROJECT_ID] \
#       --config=configs/imagenet128.py --workdir=gs://BUCKET/runs/NAME \
#       [--config.KEY=VALUE ...] [--dry_run] [-- MORE_MAIN_FLAGS ...]
#
#   e.g. launch/tpu_pod.sh --tpu=my-v4-64 --zone=us-central2-b \
#       --config=configs/imagenet128.py --workdir=gs://my-bucket/runs/i128
#
# What it does: packs this checkout (tracked and untracked, not ignored, files; so your edits
# go too), copies it to every worker (`gcloud compute tpus tpu-vm scp --worker=all`), and over
# `gcloud compute tpus tpu-vm ssh --worker=all --command=...` unpacks it to ~/biggan_jax on each,
# installs it with pip (`jax[tpu]` and the package) and runs `python3 -m biggan_jax.main` with
# your config, workdir and --config.* overrides; arguments after `--` go to main unchanged.
# No --coordinator_address: on Cloud TPU, jax.distributed.initialize() finds the coordinator,
# the process count and each worker's index itself. Each worker feeds its own share of the
# global --config.batch_size, which must split over all the slice's chips.
#
# Needs:
#   - the Google Cloud CLI (`gcloud`), logged in (`gcloud auth login`), with git and tar;
#   - a created TPU pod slice: gcloud compute tpus tpu-vm create NAME --zone=ZONE \
#       --accelerator-type=v4-32 --version=tpu-ubuntu2204-base
#   - a GCS bucket for the workdir, in the slice's region and writable by its service account:
#     every worker writes its shards of each checkpoint there, so it must be shared storage.
#   - run from the repository (any directory inside it); --config is a path in it.
# Environment: TPU_NAME, ZONE and PROJECT_ID stand in for --tpu, --zone and --project;
#   DRY_RUN=1 is --dry_run: print the exact commands, one per line, and run nothing.
# The training runs in the foreground of the ssh sessions: start this inside tmux or screen.
# Ctrl-C stops only the local side; to stop the workers, send them SIGTERM (the train loop
# then saves a checkpoint and exits): gcloud compute tpus tpu-vm ssh NAME --zone=ZONE
# --worker=all --command='pkill -TERM -f biggan_jax.main'.
# Bad or missing arguments: one line `error: ...` on stderr, exit code 2.
set -euo pipefail

SCRIPT=$(basename "$0")
REPO=$(cd "$(dirname "$0")/.." && pwd -P)
WORKERS=all  # every host of the slice.

die() { echo "error: $SCRIPT: $*" >&2; exit 2; }

# q WORD: WORD quoted for a POSIX shell, only where it needs it.
q() {
  if [[ $1 =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then printf '%s' "$1"
  else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}
qa() { local w out=(); for w in "$@"; do out+=("$(q "$w")"); done; printf '%s' "${out[*]}"; }

tpu=${TPU_NAME:-} zone=${ZONE:-} project=${PROJECT_ID:-} config='' workdir=''
dry_run=${DRY_RUN:-0}
main_flags=()
while (($#)); do
  case $1 in
    --tpu=*) tpu=${1#*=} ;;
    --zone=*) zone=${1#*=} ;;
    --project=*) project=${1#*=} ;;
    --config=*) config=${1#*=} ;;
    --workdir=*) workdir=${1#*=} ;;
    --config.*=*) main_flags+=("$1") ;;
    --dry_run) dry_run=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; main_flags+=("$@"); break ;;
    *) die "unknown argument '$1' (flags: --tpu --zone --project --config --workdir" \
           "--config.KEY=VALUE --dry_run; main's own flags go after --)" ;;
  esac
  shift
done

[[ -n $tpu ]] || die '--tpu=NAME is required (or set TPU_NAME): the TPU pod slice to run on'
[[ -n $zone ]] || die "--zone=ZONE is required (or set ZONE): the slice's zone"
[[ -n $config ]] || die '--config=PATH is required, e.g. --config=configs/imagenet128.py'
[[ -n $workdir ]] || die '--workdir=gs://BUCKET/DIR is required'
[[ $workdir == gs://?* ]] || \
  die "--workdir=$workdir: must be a gs:// path (all workers write the checkpoints there)"
if [[ -f $REPO/$config ]]; then
  config_in_repo=$config
elif [[ -f $config ]]; then
  abs=$(cd "$(dirname "$config")" && pwd -P)/$(basename "$config")
  [[ $abs == "$REPO"/* ]] || die "--config=$config: must be a file inside $REPO (it is shipped with the code)"
  config_in_repo=${abs#"$REPO"/}
else
  die "--config=$config: no such file (paths are relative to $REPO)"
fi
[[ $dry_run == 1 ]] || command -v gcloud >/dev/null || \
  die 'gcloud not found: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)'

tarball=${TMPDIR:-/tmp}/biggan_jax_src_$tpu.tar.gz
gcloud_flags=("--zone=$zone")
[[ -z $project ]] || gcloud_flags+=("--project=$project")
[[ $WORKERS == 0 ]] || gcloud_flags+=("--worker=$WORKERS")

remote="set -e; rm -rf ~/biggan_jax; mkdir -p ~/biggan_jax"
remote+="; tar -xzf ~/biggan_jax_src.tar.gz -C ~/biggan_jax; cd ~/biggan_jax"
remote+='; python3 -m pip install -q -U "jax[tpu]" -e .'
remote+="; $(qa python3 -m biggan_jax.main "--config=$config_in_repo" "--workdir=$workdir" \
  ${main_flags[@]+"${main_flags[@]}"})"

commands=(
  "git -C $(q "$REPO") ls-files -z --cached --others --exclude-standard | tar -C $(q "$REPO") --null --ignore-failed-read -T - -czf $(q "$tarball")"
  "$(qa gcloud compute tpus tpu-vm scp "$tarball" "$tpu:biggan_jax_src.tar.gz" "${gcloud_flags[@]}")"
  "$(qa gcloud compute tpus tpu-vm ssh "$tpu" "${gcloud_flags[@]}" "--command=$remote")"
)
for cmd in "${commands[@]}"; do
  if [[ $dry_run == 1 ]]; then
    echo "$cmd"
  else
    echo "+ $cmd" >&2
    bash -o pipefail -c "$cmd"
  fi
done
