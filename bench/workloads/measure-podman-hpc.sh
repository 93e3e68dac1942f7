#!/bin/bash
# The paper's study through the real podman-hpc on one machine like the project's CI hosts
# (Debian 12, root, podman-hpc from PyPI): the workload natively, with the shipped podman-hpc
# target (here) and slurm-podman-hpc target (jobs on a real local Slurm), both from podman-hpc's
# squash store, which the bench writes from the ocibuild store (`ocibuild export --format
# podman-hpc`). Prints Table 2 and writes the tables and plots to OUT/report.
#
#   bench/workloads/measure-podman-hpc.sh OUT [REPEATS] [ocibuild bench options, e.g. --events 100]
#
# One target after the other (never two at once: they would share the CPUs), in REPEATS rounds
# of native, podman-hpc, slurm-podman-hpc; the report pools each target's rounds. podman-hpc's
# own directories (graph root, run root: podman wants it under 50 characters) go to a fresh
# /tmp/phpc-*; its squash store is OUT/squash.
set -euo pipefail
out=$(realpath -m "${1:?usage: measure-podman-hpc.sh OUT [REPEATS] [bench options]}")
repeats=${2:-3}
shift $(( $# >= 2 ? 2 : 1 ))
repo=$(cd "$(dirname "$0")/../.." && pwd)
ref=localhost/ocibuild/bench-study:latest
mkdir -p "$out"
ocibuild() { (cd "$repo" && exec python -m ocibuild --store "$out/store" "$@"); }

ocibuild bench build-workload
ocibuild recipe "$repo/recipes/bench-study.yaml"

# podman-hpc as it runs on these machines (docs/podman-hpc-layout.md): its site config and
# squash store, a containers.conf podman can run with here (the Slurm jobs need it; the local
# target would be fitted without it), USER, and its fuse-overlayfs-wrap on PATH
phpc=$(mktemp -d /tmp/phpc-XXXXXX)
bindir=$(dirname "$(python -c 'import shutil, sys; print(shutil.which("podman-hpc") or sys.exit(1))')")
mkdir -p "$phpc/modules.d" "$phpc/hooks.d" "$phpc/config"
cat > "$phpc/podman_hpc.yaml" <<EOF
{"graph_root_template": "$phpc/graph", "run_root_template": "$phpc/run",
 "config_home_template": "$phpc/config", "modules_dir": "$phpc/modules.d", "hooks_dir": "$phpc/hooks.d"}
EOF
printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' \
    > "$phpc/containers.conf"
export PODMANHPC_CONFIG_FILE=$phpc/podman_hpc.yaml CONTAINERS_CONF=$phpc/containers.conf
export SQUASH_DIR=$out/squash USER=${USER:-$(id -un)} PATH=$(realpath "$bindir"):$PATH
unset XDG_RUNTIME_DIR

(cd "$repo" && exec python -m ocibuild bench local-slurm "$out/slurm" --cpus "$(nproc)") \
    > "$out/local-slurm.log" 2>&1 &
slurm_pid=$!
cleanup() {
    kill $slurm_pid; wait $slurm_pid || true
    # podman leaves a bind mount of its graph root's overlay directory behind
    grep -o " $phpc[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l || true
    rm -rf "$phpc"
}
trap cleanup EXIT
until grep -q "Slurm is up" "$out/local-slurm.log"; do
    kill -0 $slurm_pid || { cat "$out/local-slurm.log"; exit 1; }
    sleep 0.2
done
export SLURM_CONF=$out/slurm/slurm.conf

for _ in $(seq "$repeats"); do
    for target in native podman-hpc slurm-podman-hpc; do
        ocibuild bench --target "$target" --image "$ref" --results "$out/results" "$@"
    done
done
ocibuild bench report "$out"/results/* -o "$out/report"
