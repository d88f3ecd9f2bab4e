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

WORKERS=all  # every host of the slice.
KIND='TPU pod slice'
WORKDIR_WHY='all workers write the checkpoints there'
# shellcheck source=launch/_tpu_common.sh
source "$(dirname "$0")/_tpu_common.sh"
