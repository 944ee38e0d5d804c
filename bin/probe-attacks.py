"""The probes of bin/probe-attacks, run inside the namespace it made: see its header.

Every time is taken by this process's monotonic clock around a poll of an agent's API, every
100 ms at most; a figure is the first poll that saw the change, so it is late by up to a poll.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

PEERD, FLOOD, WORK = sys.argv[1:4]
INTERVAL, TTL_S = "1s", 3
UNSIGNED_TTL_FACTOR = 4
GROUP, PORT = "239.255.49.1", 24901
APIS = {"victim": 25300, "node1": 25301, "node2": 25302, "node3": 25303,
        "newcomer": 25304, "latecomer": 25305}
REAL = ["node1", "node2", "node3"]
POLL = 0.1
procs = []


def start(name):
    log = open(os.path.join(WORK, f"{name}.log"), "wb")
    proc = subprocess.Popen(
        [PEERD, "agent", "--name", name, "--api", f"127.0.0.1:{APIS[name]}",
         "--interface", "127.0.0.1", "--group", GROUP, "--port", str(PORT),
         "--interval", INTERVAL, "--ttl", f"{TTL_S}s"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    procs.append(proc)
    return time.monotonic()


def get(name, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{APIS[name]}{path}", timeout=2) as r:
            return json.load(r)
    except OSError:
        return None


def peers(name):
    return get(name, "/v1/peers") or []


def listed(name):
    return {p["hostname"] for p in peers(name)}


def status(name):
    return get(name, "/v1/status") or {}


def wait(what, check, limit=20.0):
    """The first truthy value of `check`, polled; None, and a failure noted, after `limit`."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(POLL)
    failures.append(f"{what} did not happen within {limit:g} s")
    return None


def flood(*args):
    out = subprocess.run([FLOOD, "--interface", "127.0.0.1", "--group", GROUP,
                          "--port", str(PORT), *args],
                         check=True, capture_output=True, text=True).stdout
    return dict(kv.split("=") for kv in out.strip().splitlines()[-1].split())


def log_size():
    return os.path.getsize(os.path.join(WORK, "victim.log"))


def log_text():
    with open(os.path.join(WORK, "victim.log"), encoding="utf-8", errors="replace") as f:
        return f.read()


rows, keys, failures = [], {}, []


def row(what, figure, key=None, value=None):
    rows.append((what, figure))
    if key:
        keys[key] = value


def main():
    for name in ["victim", *REAL]:
        start(name)
    everyone = {"victim", *REAL}
    if not wait("all four listing each other",
                lambda: all(listed(n) == everyone - {n} for n in everyone)):
        return 1
    # Each real peer heard a few times over: listed peers with places of their own.
    wait("the victim hearing each real peer three times",
         lambda: status("victim").get("beacons_received", 0) >= 9)

    # 1. Its own hostname, from a new instance each datagram.
    before, warnings_before = log_size(), log_text().count("own hostname; give one")
    sent = flood("--hostname", "victim", "--seconds", "10", "--garbage-every", "0")
    wait("the victim counting them",
         lambda: status("victim").get("refused", {}).get("own_hostname", 0) > 0)
    growth = log_size() - before
    warnings = log_text().count("own hostname; give one") - warnings_before
    row("own hostname, a new instance per datagram, 10 s", f"{int(sent['sent']):,} datagrams "
        f"({float(sent['rate']):,.0f}/s): the log grew {growth:,} bytes, {warnings} warnings",
        "own_hostname_log_bytes", growth)
    keys["own_hostname_datagrams"] = sent["sent"]
    keys["own_hostname_warnings"] = warnings
    if growth > 64 * 1024:
        failures.append(f"probe 1: the log grew {growth} bytes")

    # 2. Lockout: 1,100 names, once each, asking for an hour.
    sent = flood("--names", "1100", "--count", "1100", "--ttl-ms", "3600000",
                 "--garbage-every", "0")
    full = wait("the victim taking in the burst",
                lambda: len(peers("victim")) >= 1024 and peers("victim")) or []
    made_up = sum(1 for p in full if p["hostname"].startswith("flood-"))
    started = start("newcomer")
    listed_after = None
    missing = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        names = listed("victim")
        missing += sum(1 for n in REAL if n not in names)
        if "newcomer" in names and listed_after is None:
            listed_after = time.monotonic() - started
            break
        time.sleep(POLL)
    flood_at = time.monotonic()
    while any(p["hostname"].startswith("flood-") for p in peers("victim")) \
            and time.monotonic() - flood_at < 60:
        names = listed("victim")
        missing += sum(1 for n in REAL if n not in names)
        time.sleep(POLL)
    held = time.monotonic() - flood_at
    row("1,100 hostnames once each, ttl 1 h", f"{int(sent['sent']):,} datagrams in "
        f"{float(sent['seconds']):.3f} s; {made_up} made-up listed, "
        + (f"all gone {held:.1f} s later" if held < 60 else "still listed 60 s later"))
    row("  a newcomer after it", "listed after %s" % (
        f"{listed_after * 1000:.0f} ms" if listed_after is not None else "never (20 s)"),
        "lockout_newcomer_ms", round(listed_after * 1000) if listed_after is not None else -1)
    keys["lockout_made_up_gone_s"] = round(held, 1)
    if listed_after is None or listed_after > 3:
        failures.append("probe 2: the newcomer was not listed within 3 s")

    # 3. A running flood at line rate, a latecomer started 2 s into it.
    runner = subprocess.Popen([FLOOD, "--interface", "127.0.0.1", "--group", GROUP,
                               "--port", str(PORT), "--seconds", "10", "--garbage-every", "0",
                               "--names", "10000000", "--seed", "2"],
                              stdout=subprocess.PIPE, text=True)
    time.sleep(2)
    start("latecomer")
    samples = seen = 0
    while runner.poll() is None:
        names = listed("victim")
        samples += 1
        seen += "latecomer" in names
        missing += sum(1 for n in REAL if n not in names)
        time.sleep(POLL)
    out = dict(kv.split("=") for kv in runner.stdout.read().strip().splitlines()[-1].split())
    ended = time.monotonic()
    after = wait("the latecomer listed after the flood",
                 lambda: "latecomer" in listed("victim") and time.monotonic() - ended)
    row("a running flood, 10 s, a newcomer 2 s in", f"{int(out['sent']):,} datagrams "
        f"({float(out['rate']):,.0f}/s): the newcomer listed in {seen} of {samples} samples "
        "during it, and " + (f"{after * 1000:.0f} ms after it" if after else "not 20 s after it"),
        "running_flood_newcomer_after_ms", round(after * 1000) if after else -1)
    keys["running_flood_newcomer_samples"] = f"{seen}/{samples}"
    row("real peers missing from a sample, probes 2 and 3", str(missing),
        "real_peers_missing", missing)
    if missing:
        failures.append(f"a real peer was missing from {missing} samples")

    # 4. One forged beacon for node1, from another instance, asking for an hour.
    real = next(p["instance"] for p in peers("victim") if p["hostname"] == "node1")
    flood("--hostname", "node1", "--count", "1", "--ttl-ms", "3600000", "--garbage-every",
          "0", "--seed", "3")
    wait("the forged instance listed", lambda: any(
        p["hostname"] == "node1" and p["instance"] != real for p in peers("victim")))
    forged_at = time.monotonic()
    back = wait("node1 listed as itself again", lambda: any(
        p["hostname"] == "node1" and p["instance"] == real for p in peers("victim")), 60)
    held = time.monotonic() - forged_at if back else float("inf")
    bound = UNSIGNED_TTL_FACTOR * TTL_S + 1.1 + 0.5
    row("one forged beacon for node1, ttl 1 h",
        (f"node1 listed as the forger for {held:.1f} s" if back else
         "node1 still listed as the forger 60 s later")
        + f" (bound: {UNSIGNED_TTL_FACTOR} ttls and an interval, {bound:.1f} s)",
        "forged_hold_s", round(held, 1) if back else -1)
    if held > bound:
        failures.append(f"probe 4: the forged beacon held node1 for {held:.1f} s")

    width = max(len(w) for w, _ in rows)
    print("\n| probe | measured |\n|---|---|")
    for what, figure in rows:
        print(f"| {what.ljust(width)} | {figure} |")
    print()
    print(" ".join(f"{k}={v}" for k, v in keys.items()))
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


try:
    code = main()
finally:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
sys.exit(code)
