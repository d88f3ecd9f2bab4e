#!/usr/bin/env bash
# Train biggan_jax on a single-host Cloud TPU VM (v4-8, v5litepod-8, v6e-8, ...), from your workstation.
#
# Usage:
#   launch/tpu_vm.sh --tpu=NAME --zone=ZONE [--project=PROJECT_ID] \
#       --config=configs/imagenet128.py --workdir=gs://BUCKET/runs/NAME \
#       [--config.KEY=VALUE ...] [--dry_run] [-- MORE_MAIN_FLAGS ...]
#
#   e.g. launch/tpu_vm.sh --tpu=my-v4-8 --zone=us-central2-b \
#       --config=configs/cifar10.py --workdir=gs://my-bucket/runs/cifar10 --config.batch_size=256
#
# What it does: packs this checkout (tracked and untracked, not ignored, files; so your edits
# go too), copies it to the VM with `gcloud compute tpus tpu-vm scp`, and over
# `gcloud compute tpus tpu-vm ssh --command=...` unpacks it to ~/biggan_jax, installs it with
# pip (`jax[tpu]` and the package) and runs `python3 -m biggan_jax.main` with your config, workdir
# and --config.* overrides; arguments after `--` go to main unchanged.
#
# Needs:
#   - the Google Cloud CLI (`gcloud`), logged in (`gcloud auth login`), with git and tar;
#   - a created TPU VM: gcloud compute tpus tpu-vm create NAME --zone=ZONE \
#       --accelerator-type=v4-8 --version=tpu-ubuntu2204-base
#   - a GCS bucket for the workdir (checkpoints, metrics, samples), in the VM's region and
#     writable by the VM's service account: the VM's own disk goes away with the VM.
#   - run from the repository (any directory inside it); --config is a path in it.
# Environment: TPU_NAME, ZONE and PROJECT_ID stand in for --tpu, --zone and --project;
#   DRY_RUN=1 is --dry_run: print the exact commands, one per line, and run nothing.
# The training runs in the foreground of the ssh session: start this inside tmux or screen.
# Bad or missing arguments: one line `error: ...` on stderr, exit code 2.
set -euo pipefail

WORKERS=0  # single host: worker 0 is the VM.
KIND='TPU VM'
WORKDIR_WHY="the VM's disk goes away with the VM"
# shellcheck source=launch/_tpu_common.sh
source "$(dirname "$0")/_tpu_common.sh"
