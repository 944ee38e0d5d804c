#!/usr/bin/env bash
# Runs one peerd node in the foreground on a Docker network of its own; run it in a few
# terminals to make a cluster by hand. Ctrl-C stops the node, with a goodbye beacon.
#
# Usage: bin/docker-run.sh [HOSTNAME [AGENT FLAGS...]]
#   e.g. bin/docker-run.sh n1 --interval 2s --ttl 5s   (HOSTNAME defaults to a random one)
# PEERD_NETWORK picks the network (default peerd-net; peerd-demo_peers joins a kept demo),
# PEERD_IMAGE the image (default peerd:latest, built if missing).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
name=${1:-peerd-$(printf '%04x' $((RANDOM)))}
network=${PEERD_NETWORK:-peerd-net}
image=${PEERD_IMAGE:-peerd:latest}

docker image inspect "$image" >/dev/null 2>&1 || bin/build-image "$image"

# The ids of the networks named exactly $network (`--filter name=` also matches parts of names).
networks_named() {
    docker network ls --no-trunc --format '{{.ID}} {{.Name}}' | awk -v name="$1" '$2 == name { print $1 }'
}

# The id of the network named $network, created if there is none. Docker does not refuse a
# name that a create still in flight is taking, so two runs started together made two networks
# of one name, and then every run failed ("network is ambiguous"). The check and the create are
# one step under a lock; a pair left by an older run is mended: the networks no container uses
# are removed, and the run takes the one left, by id.
network_id() {
    local ids id kept=
    mapfile -t ids < <(networks_named "$network")
    if ((${#ids[@]} == 0)); then
        # A plain bridge: an --internal one drops multicast wherever bridged traffic meets
        # iptables (see docker/compose.yaml). Beacons carry IP TTL 1 and never leave it.
        docker network create "$network"
        return
    fi
    for id in "${ids[@]}"; do
        if [[ -z $kept && $(docker network inspect --format '{{len .Containers}}' "$id") != 0 ]]; then
            kept=$id
        fi
    done
    kept=${kept:-${ids[0]}}
    for id in "${ids[@]}"; do
        [[ $id == "$kept" ]] || docker network rm "$id" >/dev/null 2>&1 ||
            echo "two networks are named $network; this run uses ${kept:0:12}" >&2
    done
    echo "$kept"
}
lock=${TMPDIR:-/tmp}/peerd-docker-run.lock
if command -v flock >/dev/null; then
    network_id=$(exec 9>>"$lock" && flock 9 && network_id)
else
    network_id=$(network_id) # no flock (not Linux): runs started together may still race
fi

echo "node $name on $network; in another terminal: docker exec $name peerd peers" >&2
echo "when every node is gone: docker network rm $network" >&2
# -t only on a terminal, so the script also runs from other scripts and CI.
args=(-i)
[[ ! -t 0 ]] || args=(-it)
# Only the settings that are set: a bare `-e VAR` would still put the name in the container.
for var in PEERD_INTERVAL PEERD_TTL PEERD_LOG_FORMAT RUST_LOG; do
    [[ -z ${!var:-} ]] || args+=(-e "$var")
done
exec docker run --rm "${args[@]}" --name "$name" --hostname "$name" --network "$network_id" \
    --read-only --cap-drop ALL --security-opt no-new-privileges:true \
    "$image" "${@:2}"
