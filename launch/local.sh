#!/usr/bin/env bash
# Train biggan_jax on this machine (GPUs or CPU): one process, or several on localhost.
#
# Usage:
#   launch/local.sh --config=configs/tiny.py --workdir=runs/tiny [--config.KEY=VALUE ...] \
#       [--num_processes=N (--gpus_per_process=G | --cpu_devices=D) [--port=PORT]] \
#       [--dry_run] [-- MORE_MAIN_FLAGS ...]
#
#   e.g. launch/local.sh --config=configs/cifar10.py --workdir=runs/cifar10
#        launch/local.sh --config=configs/tiny.py --workdir=runs/tiny2 \
#            --num_processes=2 --cpu_devices=2           # a 2-host pod simulated on CPU
#        launch/local.sh --config=configs/imagenet128.py --workdir=runs/i128 \
#            --num_processes=2 --gpus_per_process=4      # one process per 4 of 8 GPUs
#
# One process (the default) runs `python -m biggan_jax.main` on every device JAX finds.
# With --num_processes=N > 1 it starts N processes joined by jax.distributed over
# 127.0.0.1:PORT (main's --coordinator_address/--num_processes/--process_id; PORT: a free
# one unless given), each with its own devices: --gpus_per_process=G gives process i
# CUDA_VISIBLE_DEVICES=iG..iG+G-1; --cpu_devices=D runs on CPU with D simulated devices per
# process (XLA_FLAGS=--xla_force_host_platform_device_count=D), as the tests do. Output of all
# processes goes to this terminal; if one fails, the others are stopped.
#
# Needs: the package installed (`pip install -e .`, with jax[cuda12] for GPUs); paths are
# relative to the current directory (run it from the repository for configs/...). Environment:
#   PYTHON (default python3); DRY_RUN=1 is --dry_run: print the exact command(s), one per
#   line, and run nothing. Bad or missing arguments: one line `error: ...` on stderr, exit 2.
set -euo pipefail

SCRIPT=$(basename "$0")
PYTHON=${PYTHON:-python3}

die() { echo "error: $SCRIPT: $*" >&2; exit 2; }

# q WORD: WORD quoted for a POSIX shell, only where it needs it.
q() {
  if [[ $1 =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then printf '%s' "$1"
  else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}
qa() { local w out=(); for w in "$@"; do out+=("$(q "$w")"); done; printf '%s' "${out[*]}"; }
is_count() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }

config='' workdir='' num_processes=1 gpus_per_process='' cpu_devices='' port=''
dry_run=${DRY_RUN:-0}
main_flags=()
while (($#)); do
  case $1 in
    --config=*) config=${1#*=} ;;
    --workdir=*) workdir=${1#*=} ;;
    --config.*=*) main_flags+=("$1") ;;
    --num_processes=*) num_processes=${1#*=} ;;
    --gpus_per_process=*) gpus_per_process=${1#*=} ;;
    --cpu_devices=*) cpu_devices=${1#*=} ;;
    --port=*) port=${1#*=} ;;
    --dry_run) dry_run=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; main_flags+=("$@"); break ;;
    *) die "unknown argument '$1' (flags: --config --workdir --config.KEY=VALUE --num_processes" \
           "--gpus_per_process --cpu_devices --port --dry_run; main's own flags go after --)" ;;
  esac
  shift
done

[[ -n $config ]] || die '--config=PATH is required, e.g. --config=configs/tiny.py'
[[ -f $config ]] || die "--config=$config: no such file (paths are relative to $PWD)"
[[ -n $workdir ]] || die '--workdir=DIR is required, e.g. --workdir=runs/tiny'
is_count "$num_processes" || die "--num_processes=$num_processes: must be a positive integer"
[[ -z $gpus_per_process ]] || is_count "$gpus_per_process" || \
  die "--gpus_per_process=$gpus_per_process: must be a positive integer"
[[ -z $cpu_devices ]] || is_count "$cpu_devices" || \
  die "--cpu_devices=$cpu_devices: must be a positive integer"
[[ -z $gpus_per_process || -z $cpu_devices ]] || \
  die '--gpus_per_process and --cpu_devices exclude each other: GPUs or CPU'
if ((num_processes > 1)); then
  [[ -n $gpus_per_process || -n $cpu_devices ]] || \
    die "--num_processes=$num_processes: give --gpus_per_process=G (GPUs) or --cpu_devices=D" \
        "(CPU) so that the processes do not share devices"
  if [[ -z $port ]]; then
    port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') \
      || die "cannot find a free port with $PYTHON; give --port=PORT"
  fi
  [[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || die "--port=$port: must be 1..65535"
elif [[ -n $port ]]; then
  die '--port is for --num_processes > 1'
fi

commands=()
for ((i = 0; i < num_processes; i++)); do
  env_vars=()
  if [[ -n $cpu_devices ]]; then
    env_vars+=(JAX_PLATFORMS=cpu "XLA_FLAGS=--xla_force_host_platform_device_count=$cpu_devices")
  elif [[ -n $gpus_per_process ]]; then
    ids=$(seq -s, $((i * gpus_per_process)) $(((i + 1) * gpus_per_process - 1)))
    env_vars+=("CUDA_VISIBLE_DEVICES=$ids")
  fi
  argv=("$PYTHON" -m biggan_jax.main "--config=$config" "--workdir=$workdir")
  if ((num_processes > 1)); then
    argv+=("--coordinator_address=127.0.0.1:$port" "--num_processes=$num_processes" "--process_id=$i")
  fi
  argv+=(${main_flags[@]+"${main_flags[@]}"})
  cmd=$(qa ${env_vars[@]+"${env_vars[@]}"} "${argv[@]}")
  commands+=("$cmd")
done

if [[ $dry_run == 1 ]]; then
  printf '%s\n' "${commands[@]}"
  exit 0
fi
if ((num_processes == 1)); then
  echo "+ ${commands[0]}" >&2
  exec bash -c "${commands[0]}"
fi

pids=()
stop_all() { local p; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'stop_all; exit 130' INT TERM
for cmd in "${commands[@]}"; do
  echo "+ $cmd &" >&2
  bash -c "$cmd" &
  pids+=($!)
done
status=0
for ((n = 0; n < num_processes; n++)); do
  wait -n && continue
  status=$?
  echo "error: $SCRIPT: a process exited with status $status; stopping the others" >&2
  stop_all
  wait || true
  break
done
exit $status
