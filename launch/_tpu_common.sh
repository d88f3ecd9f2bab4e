# Shared by launch/tpu_vm.sh and launch/tpu_pod.sh, which set WORKERS (0: the single
# host; all: every worker of a pod slice), KIND and WORKDIR_WHY, then source this file.
# Not meant to be run on its own.
SCRIPT=$(basename "$0")
REPO=$(cd "$(dirname "$0")/.." && pwd -P)

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

[[ -n $tpu ]] || die "--tpu=NAME is required (or set TPU_NAME): the $KIND to run on"
[[ -n $zone ]] || die "--zone=ZONE is required (or set ZONE): the $KIND's zone"
[[ -n $config ]] || die '--config=PATH is required, e.g. --config=configs/imagenet128.py'
[[ -n $workdir ]] || die '--workdir=gs://BUCKET/DIR is required'
[[ $workdir == gs://?* ]] || \
  die "--workdir=$workdir: must be a gs:// path ($WORKDIR_WHY)"
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
