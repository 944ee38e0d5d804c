#!/usr/bin/env bash
# Runs one peerd node in the foreground on an internal Docker network; run it in a few
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
if ! docker network inspect "$network" >/dev/null 2>&1; then
    # Internal: no NAT and no route off this machine, so beacons stay on this bridge.
    docker network create --internal "$network" >/dev/null
fi
# Safety: never announce on a network with a way out, whoever created it.
internal=$(docker network inspect --format '{{.Internal}}' "$network")
if [[ $internal != true ]]; then
    echo "refusing to run on $network: it is not an internal network" >&2
    exit 1
fi
bin/allow-multicast "$network"

echo "node $name on $network; in another terminal: docker exec $name peerd peers" >&2
echo "when every node is gone: bin/allow-multicast $network --remove && docker network rm $network" >&2
# -t only on a terminal, so the script also runs from other scripts and CI.
args=(-i)
[[ ! -t 0 ]] || args=(-it)
# Only the settings that are set: a bare `-e VAR` would still put the name in the container.
for var in PEERD_INTERVAL PEERD_TTL PEERD_LOG_FORMAT RUST_LOG; do
    [[ -z ${!var:-} ]] || args+=(-e "$var")
done
exec docker run --rm "${args[@]}" --name "$name" --hostname "$name" --network "$network" \
    --read-only --cap-drop ALL --security-opt no-new-privileges:true \
    "$image" "${@:2}"
