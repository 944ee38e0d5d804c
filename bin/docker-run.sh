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
if ! docker network inspect "$network" >/dev/null 2>&1; then
    # A plain bridge: an --internal one drops multicast wherever bridged traffic meets
    # iptables (see docker/compose.yaml). Beacons carry IP TTL 1 and never leave it.
    docker network create "$network" >/dev/null
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
exec docker run --rm "${args[@]}" --name "$name" --hostname "$name" --network "$network" \
    --read-only --cap-drop ALL --security-opt no-new-privileges:true \
    "$image" "${@:2}"
