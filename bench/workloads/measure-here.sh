#!/bin/bash
# The paper's study on one machine like the project's CI hosts (Debian 12, root): the workload
# natively, in podman, and as Cori-style Slurm jobs through a real local Slurm with the Shifter
# stand-ins of tests/study/standins (test doubles: Shifter cannot run here; the stand-in
# shifterimg pulls the image from a local registry the way Shifter's gateway does, and the
# stand-in shifter runs it with ch-run). Prints Table 2 and writes the tables and plots to
# OUT/report.
#
#   bench/workloads/measure-here.sh OUT [REPEATS] [ocibuild bench options, e.g. --events 100]
#
# Runs one target after the other (never two at once: they would share the CPUs), in REPEATS
# rounds of native, podman, cori, so that whatever else loads the machine meanwhile is spread over
# the three; the report pools each target's rounds.
set -euo pipefail
out=$(realpath -m "${1:?usage: measure-here.sh OUT [REPEATS] [bench options]}")
repeats=${2:-3}
shift $(( $# >= 2 ? 2 : 1 ))
repo=$(cd "$(dirname "$0")/../.." && pwd)
standins=$repo/tests/study/standins
ref=localhost/ocibuild/bench-study:latest
mkdir -p "$out"
ocibuild() { (cd "$repo" && exec python -m ocibuild --store "$out/store" "$@"); }

ocibuild bench build-workload
ocibuild recipe "$repo/recipes/bench-study.yaml"

# podman as it works on these machines: runc, vfs, no default ulimits (DESIGN.md)
podman=(podman --root "$out/podman/storage" --runroot "$out/podman/run" --storage-driver vfs
        --runtime runc --cgroup-manager cgroupfs)
mkdir -p "$out/podman"
printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n' \
    > "$out/podman/containers.conf"
export CONTAINERS_CONF=$out/podman/containers.conf
cat > "$out/podman.yaml" <<EOF
name: podman
description: podman on this host (runc, vfs storage)
runtime: podman
command: [$(IFS=,; echo "${podman[*]}")]
run_options: [--network, none]
EOF

# a local Slurm with the Shifter SPANK stand-in, and a login profile putting the stand-ins on PATH
gcc -shared -fPIC "$standins/shifter_spank.c" -o "$out/shifter_spank.so"
(cd "$repo" && exec python -m ocibuild bench local-slurm "$out/slurm" --cpus "$(nproc)" \
    --spank "$out/shifter_spank.so" --feature haswell) > "$out/local-slurm.log" 2>&1 &
slurm_pid=$!
# a local registry, where the image goes in Docker form for the stand-in gateway to pull
python3 "$repo/registry/start.py" --storage "$out/registry" --log "$out/registry.log" \
    > "$out/registry.url" &
registry_pid=$!
trap 'kill $slurm_pid $registry_pid; wait $slurm_pid $registry_pid || true' EXIT
until grep -q "Slurm is up" "$out/local-slurm.log"; do
    kill -0 $slurm_pid || { cat "$out/local-slurm.log"; exit 1; }
    sleep 0.2
done
export SLURM_CONF=$out/slurm/slurm.conf
export SCRATCH=$out/scratch HOME=$out/home
export SHIFTER_STANDIN_IMAGES=$out/shifter-images USER=${USER:-$(id -un)}
mkdir -p "$SCRATCH" "$HOME"
echo "export PATH=$standins:\$PATH" > "$HOME/.bash_profile"
export PATH=$standins:$PATH
"${podman[@]}" image exists "$ref" || {
    ocibuild export "$ref" --format docker-archive -o "$out/image.tar"
    "${podman[@]}" load -i "$out/image.tar"
}

until [ -s "$out/registry.url" ]; do
    kill -0 $registry_pid || { cat "$out/registry.log"; exit 1; }
    sleep 0.2
done
shifter_ref=$(sed 's|^http://||' "$out/registry.url")/ocibuild/bench-study:latest
ocibuild push "$ref" --to "$shifter_ref" --format docker --insecure

for _ in $(seq "$repeats"); do
    for target in native "$out/podman.yaml"; do
        ocibuild bench --target "$target" --image "$ref" --results "$out/results" "$@"
    done
    ocibuild bench --target cori --image "$shifter_ref" --results "$out/results" "$@"
done
ocibuild bench report "$out"/results/* -o "$out/report"
