# shellcheck shell=bash
# What the scripts in bin/ share. Sourced, not run: `. bin/common.sh` from the repository root.

# The host's own target triple. Builds name it explicitly: with --target, RUSTFLAGS reach only
# the final binary, not build scripts and proc macros, which cannot be linked statically.
host_target() {
    rustc -vV | sed -n 's/^host: //p'
}

# build_static [CARGO ARGS...]: the static release build, the binary bin/build-image puts in the
# image; at target/<host triple>/release/.
build_static() {
    RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target "$(host_target)" "$@"
}

# Sets `bin` to the agent binary a benchmark measures: $PEERD_BIN, else the static release
# build, made here.
measured_peerd() {
    # shellcheck disable=SC2034  # read by the script that sources this file
    bin=${PEERD_BIN:-target/$(host_target)/release/peerd}
    if [ -z "${PEERD_BIN:-}" ]; then
        echo "==> building the static release binary"
        build_static -q
    fi
}

# loopback_netns NAME: a network namespace of the script's own whose loopback is up and carries
# the multicast group, so every beacon sent in it stays in it. The script deletes it on exit.
loopback_netns() {
    ip netns add "$1"
    ip -n "$1" link set lo up
    ip -n "$1" route add 224.0.0.0/4 dev lo
}
