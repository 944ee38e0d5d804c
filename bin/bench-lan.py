#!/usr/bin/env python3
"""The measuring half of bin/bench-lan: run by it inside the hub namespace, once the namespaces
and the bridge exist. Starts the agents, drives the four phases and prints the figures.

Every time compared is one an agent recorded itself (a log timestamp, first_seen in /v1/peers,
an event's time in /v1/events), all on the machine's one wall clock; the polls below only wait
for the change to be visible, with a deadline, and never time it. The one exception says so:
when `peerd watch` clients read each agent's changes (bin/lan_watch.py), by their own clock.
Standard library only.
"""

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lan_watch import all_seen, watch_all  # noqa: E402  (beside this file)

API_PORT = 24901
# How long each phase may take before the bench gives up on it: far beyond any target, so
# only a broken run (an agent that never hears another) reaches it. A crowd that misses its
# early answers still completes within one jittered interval (16.5 s) of the last start.
PHASE_DEADLINE = float(os.environ.get("PEERD_LAN_PHASE_SECONDS", "60"))
# Between two rounds of polling: 250 status requests already take a few hundred ms, and
# polling harder would take CPU from the agents being measured.
POLL_PAUSE = 0.5
# After the crowd is whole, before the newcomer: the early-answer pacing remembers the last
# second of answers, and a newcomer is meant to join a LAN that has run for a while.
SETTLE = 2.0
# Up to this many agents, a client runs `peerd watch` on each during the simultaneous start
# (bin/lan_watch.py): beyond it, the watchers would take the cores the agents are measured on.
WATCH_MAX = 50


IPV6 = False  # set from --ipv6 in main()


def address(i):
    """Node i's address on the bridge, as bin/bench-lan assigns it."""
    if IPV6:
        return f"fd78::{i:x}"
    return f"10.78.{i // 250}.{i % 250 + 1}"


def flag(addr):
    """An address as a command-line flag takes it with a port after it: IPv6 in brackets."""
    return f"[{addr}]" if ":" in addr else addr


def parse_time(text):
    """An RFC 3339 UTC timestamp (the agents' logs and API) as seconds since the epoch."""
    return datetime.fromisoformat(text).timestamp()


class Agent:
    def __init__(self, args, i):
        self.i = i
        self.name = f"node{i}"
        self.namespace = f"{args.prefix}-{i}"
        self.addr = address(i)
        self.log_path = os.path.join(args.work, f"{self.name}.log")
        self.proc = None

    def command(self, args):
        argv = [args.bin, "agent", "--name", self.name, "--api", f"{flag(self.addr)}:{API_PORT}"]
        if args.mode == "seed":
            argv += ["--no-multicast", "--peer", flag(address(1)),
                     "--secret-file", os.path.join(args.work, "secret")]
        elif args.mode == "list":
            argv += ["--no-multicast"]
        return argv

    def launch(self, args, gate=None):
        """Starts the agent in its namespace; with a gate, it execs the agent only once the
        gate (a FIFO) is opened for writing."""
        argv = ["ip", "netns", "exec", self.namespace]
        if gate:
            # `:` opens the FIFO for reading, which blocks until a writer opens it.
            argv += ["sh", "-c", ': < "$0"; exec "$@"', gate]
        argv += self.command(args)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PEERD_")}
        env["RUST_LOG"] = "info"
        if args.mode == "list":
            # Every node's address, the newcomer's too; each agent leaves out its own.
            env["PEERD_PEERS"] = ",".join(flag(address(i)) for i in range(1, args.nodes + 2))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env
            )

    def at_gate(self):
        try:
            with open(f"/proc/{self.proc.pid}/wchan") as f:
                return f.read().strip() == "wait_for_partner"
        except OSError:
            return False

    def logged(self, needle):
        """When the agent logged a line containing `needle` first, or None."""
        try:
            with open(self.log_path, errors="replace") as f:
                for line in f:
                    if needle in line:
                        return parse_time(line.split()[0])
        except OSError:
            pass
        return None

    def get(self, path, timeout=5.0):
        conn = http.client.HTTPConnection(self.addr, API_PORT, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            if response.status != 200:
                return None
            return json.loads(response.read())
        except (OSError, http.client.HTTPException, ValueError):
            return None
        finally:
            conn.close()

    def status(self):
        return self.get("/v1/status")

    def peers(self):
        return self.get("/v1/peers")

    def events_after(self, instance, last_id, want, timeout=5.0):
        """The events after `last_id` from the agent's history (/v1/events with
        Last-Event-ID), read until `want(event, change)` holds; that change, or None."""
        conn = http.client.HTTPConnection(self.addr, API_PORT, timeout=timeout)
        try:
            conn.request("GET", "/v1/events", headers={"Last-Event-ID": f"{instance}-{last_id}"})
            response = conn.getresponse()
            kind, data = None, []
            for raw in response:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    change = json.loads("\n".join(data))
                    if want(kind, change):
                        return change
                    kind, data = None, []
        except (OSError, http.client.HTTPException, ValueError):
            return None
        finally:
            conn.close()
        return None

    def schedstat(self):
        """Nanoseconds on a CPU and waiting on a run queue, all threads, since it began."""
        pid = self.proc.pid
        cpu_ns = wait_ns = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                on_cpu, waiting = f.read().split()[:2]
            cpu_ns += int(on_cpu)
            wait_ns += int(waiting)
        return cpu_ns, wait_ns

    def proc_stats(self):
        """CPU (ns on a CPU, all threads, from schedstat), RSS (KiB) and the traffic of the
        agent's namespace: eth0's bytes and packets, UDP datagrams in and out."""
        pid = self.proc.pid
        cpu_ns = self.schedstat()[0]
        with open(f"/proc/{pid}/stat") as f:
            # After the command name, which may hold spaces: utime and stime are fields 14, 15.
            utime, stime = map(int, f.read().rsplit(")", 1)[1].split()[11:13])
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        with open(f"/proc/{pid}/net/dev") as f:
            eth0 = next(l for l in f if l.strip().startswith("eth0:")).split(":", 1)[1].split()
        with open(f"/proc/{pid}/net/snmp") as f:
            udp = [l.split() for l in f if l.startswith("Udp:")]
        udp = dict(zip(udp[0][1:], map(int, udp[1][1:])))
        # IPv6's UDP counters are apart, one `Udp6Name value` a line: both families count.
        # (A kernel without IPv6 has no such file.)
        try:
            with open(f"/proc/{pid}/net/snmp6") as f:
                for key, value in (l.split() for l in f if l.startswith("Udp6")):
                    if key[4:] in udp:
                        udp[key[4:]] += int(value)
        except OSError:
            pass
        return {
            "cpu_ns": cpu_ns,
            "utime": utime,
            "stime": stime,
            "rss_kib": rss,
            "rx_bytes": int(eth0[0]),
            "rx_packets": int(eth0[1]),
            "tx_bytes": int(eth0[8]),
            "tx_packets": int(eth0[9]),
            "udp_in": udp["InDatagrams"],
            "udp_out": udp["OutDatagrams"],
            "udp_drops": udp["RcvbufErrors"],
        }


def machine_cpu():
    """Seconds of CPU the whole machine was busy, and of them in softirq, so far (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / ticks, fields[6] / ticks


def wait_for(what, deadline, check, pause=POLL_PAUSE):
    """Calls `check` until it returns something truthy, up to `deadline` (time.monotonic())."""
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(pause)


def all_report(agents, peers):
    """Every agent's status, if each one lists exactly `peers` peers; else None."""
    statuses = []
    for agent in agents:
        status = agent.status()
        if not status or status["peers"] != peers:
            return None
        statuses.append(status)
    return statuses


def all_logged(agents, needle):
    """When each agent first logged `needle`, if every one has; else None."""
    times = [agent.logged(needle) for agent in agents]
    return None if None in times else times


def events_total(status):
    """The id of the agent's latest event: its events, all kinds, counted from 1."""
    return sum(status["events"].values())


def spread(values):
    values = sorted(values)
    return values[0], statistics.median(values), values[-1]


def refused_by_reason(statuses):
    """The datagrams `statuses`' agents refused, summed by reason, as one line."""
    refused = {}
    for s in statuses:
        for reason, count in s.get("refused", {}).items():
            refused[reason] = refused.get(reason, 0) + count
    return ", ".join(f"{k} {v}" for k, v in sorted(refused.items()) if v) or "none"


def ms(seconds):
    return f"{seconds * 1000:.0f} ms"


def start_crowd(args, crowd):
    """Phase 1. Returns the figures and the key=value pairs."""
    gate = None
    if args.launch == "gate":
        gate = os.path.join(args.work, "gate")
        os.mkfifo(gate)
    launch_began = time.time()
    for agent in crowd:
        agent.launch(args, gate)
    launched = time.time()
    deadline = time.monotonic() + PHASE_DEADLINE
    if gate:
        wait_for("the agents at the gate", deadline, lambda: all(a.at_gate() for a in crowd), 0.05)
        released = time.time()
        os.close(os.open(gate, os.O_WRONLY))
    else:
        released = launch_began
    watchers = watch_all(args.bin, crowd, API_PORT) if len(crowd) <= WATCH_MAX else {}
    names = {a.name for a in crowd}
    watched = None
    try:
        starts = wait_for("every agent started", deadline,
                          lambda: all_logged(crowd, "agent started"), 0.1)
        statuses = wait_for("every agent lists every other", deadline,
                            lambda: all_report(crowd, len(crowd) - 1))
        if watchers:
            watched = wait_for("every watcher read every other agent listed", deadline,
                               lambda: all_seen(watchers, names), 0.05)
    finally:
        for watcher in watchers.values():
            watcher.stop()
    views = {}
    for agent in crowd:
        view = agent.peers()
        if view is None or {p["hostname"] for p in view} != names - {agent.name}:
            raise TimeoutError(f"{agent.name} no longer lists exactly the others")
        views[agent.name] = {p["hostname"]: parse_time(p["first_seen"]) for p in view}
    # Run-queue wait since each process began (schedstat's second field): what starting
    # hundreds of processes at once on few cores costs each of them before it can run.
    waits, cpus = [], []
    for agent in crowd:
        cpu_ns, wait_ns = agent.schedstat()
        cpus.append(cpu_ns / 1e9)
        waits.append(wait_ns / 1e9)
    complete = max(t for view in views.values() for t in view.values())
    # When each agent's first beacon went out, as the first of the others to hear it recorded.
    # Its "agent started" line comes before its socket opens: under load, long before.
    announced = {n: min(v[n] for o, v in views.items() if o != n) for n in names}
    # The pair that took longest once both were on the group: the observer hears nothing before
    # it announces itself (its socket opens just before), the other is heard from its first.
    slowest = max((t - max(announced[o], announced[n]), o, n)
                  for o, view in views.items() for n, t in view.items())
    with open(os.path.join(args.work, "crowd.json"), "w") as f:
        json.dump({"released": released, "starts": dict(zip((a.name for a in crowd), starts)),
                   "views": views, "waits": waits, "cpus": cpus}, f)
    first_start, last_start = min(starts), max(starts)
    last_announced = max(announced.values())
    early = [s["early_answers"] for s in statuses]
    unicast_answers = [s.get("unicast", {}).get("answers", 0) for s in statuses]
    refused = refused_by_reason(statuses)
    queue_drops = sum(s.get("receive_queue_drops") or 0 for s in statuses)
    took = complete - last_start
    rows = [
        ("agents launched (fork+exec of `ip netns exec`), all", ms(launched - launch_began), ""),
        ("starts: release to first / last `agent started`",
         f"{ms(first_start - released)} / {ms(last_start - released)}", ""),
        ("release to the last agent's first beacon", ms(last_announced - released), ""),
        ("all list all, after the last `agent started`", ms(took), "1 s"),
        ("all list all, after the last first beacon", ms(complete - last_announced), ""),
        ("all list all, after the release", ms(complete - released), ""),
        ("all list all as `peerd watch` on each read it, after the last `agent started`",
         ms(watched - last_start) if watched else f"not run (over {WATCH_MAX} agents)", ""),
        ("slowest pair, once both had sent their first beacon",
         f"{ms(slowest[0])} ({slowest[1]} heard {slowest[2]})", ""),
        ("early beacons to the group per node (min / median / max)", "%d / %g / %d" % spread(early), ""),
        ("unicast answers per node (min / median / max)", "%d / %g / %d" % spread(unicast_answers), ""),
        ("datagrams refused, all agents, by reason", refused, ""),
        ("run-queue wait per agent until all listed all (min / median / max)",
         " / ".join(ms(w) for w in spread(waits)), ""),
        ("CPU per agent until all listed all (min / median / max)",
         " / ".join(ms(c) for c in spread(cpus)), ""),
        ("datagrams dropped at the agents' sockets (sum)", str(queue_drops), ""),
    ]
    pairs = {
        "crowd_start_spread_ms": round((last_start - first_start) * 1000),
        "crowd_ms": round(took * 1000),
        "crowd_after_last_beacon_ms": round((complete - last_announced) * 1000),
        "crowd_watched_ms": round((watched - last_start) * 1000) if watched else "none",
        "crowd_slowest_pair_ms": round(slowest[0] * 1000),
        "crowd_early_answers_max": max(early),
        "crowd_run_queue_wait_ms_max": round(max(waits) * 1000),
        "crowd_queue_drops": queue_drops,
    }
    return rows, pairs


def receptions(agents):
    """UDP datagrams delivered in the agents' namespaces so far, all of them."""
    return sum(a.proc_stats()["udp_in"] for a in agents if a.proc and a.proc.poll() is None)


def add_newcomer(args, crowd, newcomer, background):
    """Phase 2. `background`: datagrams the crowd receives a second while nothing happens."""
    before = [a.status() for a in crowd]
    early_before = [s["early_answers"] for s in before]
    unicast_before = [s.get("unicast", {}).get("answers", 0) for s in before]
    received_before = [s["beacons_received"] for s in before]
    received_at, received_then = time.monotonic(), receptions(crowd)
    cpu_before = sum(a.schedstat()[0] for a in crowd)
    newcomer.launch(args)
    deadline = time.monotonic() + PHASE_DEADLINE
    started = wait_for("the newcomer started", deadline,
                       lambda: newcomer.logged("agent started"), 0.05)
    wait_for("the newcomer lists all", deadline, lambda: all_report([newcomer], len(crowd)))
    wait_for("all list the newcomer", deadline, lambda: all_report(crowd, len(crowd)))
    # Before the listings below, which cost more than the join. Every early answer is
    # multicast, so each peer hears every other peer's answer too: a join costs about N * N
    # receptions (and the status polls a little).
    cpu = (sum(a.schedstat()[0] for a in crowd) - cpu_before) / 1e9
    window = time.monotonic() - received_at
    measured = receptions(crowd + [newcomer]) - received_then - background * window
    statuses = [a.status() for a in crowd]
    early = [s["early_answers"] - b for s, b in zip(statuses, early_before)]
    unicast = [s.get("unicast", {}).get("answers", 0) - b for s, b in zip(statuses, unicast_before)]
    # What the join cost the LAN, from the counters: the newcomer's first beacon, heard by
    # every node (on the group, or sent to each target); each early beacon to the group, heard
    # by every node but its sender; each unicast answer, heard by the newcomer alone.
    n = len(crowd)
    counted = n + sum(early) * n + sum(unicast)
    received = sum(s["beacons_received"] for s in statuses) - sum(received_before)
    lists_all = max(parse_time(p["first_seen"]) for p in newcomer.peers()) - started
    listed_by_all = 0.0
    for agent in crowd:
        seen = [p for p in agent.peers() if p["hostname"] == newcomer.name]
        listed_by_all = max(listed_by_all, parse_time(seen[0]["first_seen"]) - started)
    rows = [
        ("newcomer lists all, after its start", ms(lists_all), "0.3 s"),
        ("newcomer listed by all, after its start", ms(listed_by_all), "0.3 s"),
        ("early beacons to the group per node for it (min / median / max)",
         "%d / %g / %d" % spread(early), ""),
        ("unicast answers per node for it (min / median / max)",
         "%d / %g / %d" % spread(unicast), ""),
        ("receptions the join cost the LAN, from the counters", f"{counted} ({counted / n:.1f} N)", "3 N"),
        ("UDP receptions meanwhile, all namespaces, less the background rate",
         f"{measured:.0f} ({measured / n:.1f} N, over {ms(window)})", ""),
        ("beacons the other agents took in meanwhile, all", str(received), ""),
        ("CPU of the other agents meanwhile, all", f"{cpu:.2f} CPU-s", ""),
    ]
    pairs = {"join_receptions": counted, "join_receptions_measured": round(measured),
             "newcomer_lists_all_ms": round(lists_all * 1000),
             "newcomer_listed_by_all_ms": round(listed_by_all * 1000),
             "newcomer_lan_cpu_s": round(cpu, 2)}
    return rows, pairs


def goodbye(crowd, leaving):
    """Phase 3: SIGTERM `leaving`; until every agent of `crowd` has its `left` event."""
    statuses = all_report(crowd, len(crowd))
    if statuses is None:
        raise TimeoutError("the LAN was not whole before the goodbye")
    sent_signal = time.time()
    leaving.proc.send_signal(signal.SIGTERM)
    try:
        code = leaving.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{leaving.name} still running 10 s after SIGTERM") from None
    deadline = time.monotonic() + PHASE_DEADLINE
    wait_for("all drop the leaving node", deadline, lambda: all_report(crowd, len(crowd) - 1))
    # The agent's own "signal received" is the start: "goodbye sent" is logged once the send
    # returns, and on a large bridge the receivers it woke run first, so they log `left` before.
    signalled = leaving.logged("signal received")
    said = leaving.logged("goodbye sent")
    if signalled is None or said is None:
        raise TimeoutError(f"{leaving.name} logged no signal or no goodbye (exit {code})")
    last_left = signalled
    for agent, status in zip(crowd, statuses):
        change = agent.events_after(
            status["instance"],
            events_total(status),
            lambda kind, c: kind == "left" and c["peer"]["hostname"] == leaving.name,
        )
        if change is None:
            raise TimeoutError(f"{agent.name} has no `left` event for {leaving.name}")
        last_left = max(last_left, parse_time(change["time"]))
    took = last_left - signalled
    rows = [
        ("goodbye: `signal received` to the last `left`", ms(took), "0.1 s"),
        ("goodbye: `signal received` to `goodbye sent` (the send call returned)",
         ms(said - signalled), ""),
        ("goodbye: kill(SIGTERM) to `signal received`", ms(signalled - sent_signal), ""),
        ("exit code after SIGTERM", str(code), "0"),
    ]
    return rows, {"goodbye_ms": round(took * 1000), "goodbye_send_call_ms": round((said - signalled) * 1000),
                  "goodbye_exit": code}


def idle(args, crowd):
    """Phase 4: nothing changes for args.idle seconds; what each node costs meanwhile."""
    before_status = all_report(crowd, len(crowd) - 1)
    if before_status is None:
        raise TimeoutError("the LAN was not whole before the idle window")
    # The API is not asked inside the window, so its traffic is not counted as the agents'.
    m0, t0 = machine_cpu(), time.monotonic()
    before = [a.proc_stats() for a in crowd]
    time.sleep(args.idle)  # the measured window itself, not a wait for readiness
    after = [a.proc_stats() for a in crowd]
    m1, t1 = machine_cpu(), time.monotonic()
    after_status = all_report(crowd, len(crowd) - 1)
    if after_status is None:
        raise TimeoutError("an agent lost a peer during the idle window")
    changes = sum(events_total(a) - events_total(b) for a, b in zip(after_status, before_status))
    per_min = 60.0 / (t1 - t0)

    def per_node(key):
        return [(a[key] - b[key]) * per_min for a, b in zip(after, before)]

    def status_per_node(key):
        return [(a[key] - b[key]) * per_min for a, b in zip(after_status, before_status)]

    cpu = [x / 1e9 for x in per_node("cpu_ns")]
    with open(os.path.join(args.work, "idle.json"), "w") as f:
        json.dump({"cpu": dict(zip((a.name for a in crowd), cpu)),
                   "utime": per_node("utime"), "stime": per_node("stime")}, f)
    figures = [
        ("CPU per node, CPU-s/min", cpu, "%.4f", "0.05"),
        ("beacons sent per node per min (/v1/status)", status_per_node("beacons_sent"), "%.1f", ""),
        ("beacons received per node per min", status_per_node("beacons_received"), "%.0f", ""),
        ("UDP datagrams out / min (its namespace)", per_node("udp_out"), "%.1f", ""),
        ("UDP datagrams in / min", per_node("udp_in"), "%.0f", ""),
        ("eth0 bytes sent / min", per_node("tx_bytes"), "%.0f", ""),
        ("eth0 bytes received / min", per_node("rx_bytes"), "%.0f", ""),
        ("UDP receive-buffer drops / min", per_node("udp_drops"), "%.0f", "0"),
        ("RSS at the end, MiB", [a["rss_kib"] / 1024 for a in after], "%.1f", ""),
    ]
    rows = []
    for label, values, fmt, goal in figures:
        low, mid, high = spread(values)
        rows.append((label, " / ".join(fmt % v for v in (low, mid, high)), goal))
    ticks = os.sysconf("SC_CLK_TCK")
    user, system = (sum(per_node(key)) / ticks / len(crowd) for key in ("utime", "stime"))
    rows.append(("of which user / system, mean per node (10 ms ticks)",
                 "%.4f / %.4f" % (user, system), ""))
    top = max(range(len(crowd)), key=lambda k: cpu[k])
    rows.append(("the node with the most CPU", f"{crowd[top].name}: {cpu[top]:.4f}", ""))
    busy, softirq = ((m1[k] - m0[k]) * per_min for k in (0, 1))
    rows.append(("whole machine busy, other work included, CPU-s/min (per node)",
                 "%.2f (%.4f)" % (busy, busy / len(crowd)), ""))
    rows.append(("whole machine in softirq, CPU-s/min (per node)",
                 "%.3f (%.4f)" % (softirq, softirq / len(crowd)), ""))
    rows.append(("peer events during the window, all nodes", str(changes), "0"))
    pairs = {
        "idle_cpu_s_per_min_median": round(statistics.median(cpu), 4),
        "idle_cpu_s_per_min_max": round(max(cpu), 4),
        "idle_cpu_user_s_per_min_mean": round(user, 4),
        "idle_cpu_system_s_per_min_mean": round(system, 4),
        "idle_machine_cpu_s_per_min_per_node": round(busy / len(crowd), 4),
        "idle_beacons_sent_per_min": round(statistics.median(status_per_node("beacons_sent")), 1),
        "idle_bytes_sent_per_min": round(statistics.median(per_node("tx_bytes"))),
        "idle_bytes_received_per_min": round(statistics.median(per_node("rx_bytes"))),
        "idle_rss_mib_max": round(max(a["rss_kib"] for a in after) / 1024, 1),
        "idle_events": changes,
    }
    return rows, pairs


def table(title, rows):
    print(f"\n{title}\n")
    print("| figure | measured | target |")
    print("|---|---|---|")
    for label, value, goal in rows:
        print(f"| {label} | {value} | {goal} |")
    sys.stdout.flush()


def how_far(crowd):
    """What the agents that answer say when a phase gives up: how many peers each lists, and
    what may have held them back."""
    statuses = [s for s in (a.status() for a in crowd) if s]
    if not statuses:
        return [("agents that answer", "none", "")]

    def of(key, default=0):
        return [s.get(key) or default for s in statuses]

    stale = [s.get("refused", {}).get("stale", 0) for s in statuses]
    unicast = [s.get("unicast", {}).get("answers", 0) for s in statuses]
    return [
        ("agents that answer", f"{len(statuses)} of {len(crowd)}", ""),
        ("peers listed (min / median / max)", "%d / %g / %d" % spread(of("peers")), ""),
        ("stalls: runs over a second late (min / median / max)", "%d / %g / %d" % spread(of("stalls")), ""),
        ("datagrams dropped unread after a stall (sum)", str(sum(stale)), ""),
        ("datagrams refused, all agents, by reason", refused_by_reason(statuses), ""),
        ("early beacons to the group per node (min / median / max)",
         "%d / %g / %d" % spread(of("early_answers")), ""),
        ("unicast answers per node (min / median / max)", "%d / %g / %d" % spread(unicast), ""),
        ("datagrams dropped at the agents' sockets (sum)", str(sum(of("receive_queue_drops"))), ""),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--idle", type=float, required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--launch", choices=["gate", "serial"], default="gate")
    parser.add_argument("--mode", choices=["group", "seed", "list"], default="group")
    parser.add_argument("--ipv6", action="store_true")
    parser.add_argument("--family", choices=["4", "6", "dual"], default="4")
    args = parser.parse_args()
    global IPV6
    IPV6 = args.ipv6

    crowd = [Agent(args, i) for i in range(1, args.nodes + 1)]
    newcomer = Agent(args, args.nodes + 1)
    pairs = {"nodes": args.nodes, "launch": args.launch, "mode": args.mode,
             "family": args.family}
    try:
        how = {"group": "on the group", "seed": "by unicast through one seed, signed",
               "list": "by unicast to a static list"}[args.mode]
        print(f"==> phase 1: {args.nodes} agents at 15 s / 35 s, {how}, started together ({args.launch})")
        rows, more = start_crowd(args, crowd)
        pairs.update(more)
        table("Simultaneous start", rows)
        # Pacing, not readiness (see SETTLE); the crowd's datagrams meanwhile are the
        # background the join's receptions are measured against.
        quiet_from, quiet_count = time.monotonic(), receptions(crowd)
        time.sleep(SETTLE)
        background = (receptions(crowd) - quiet_count) / (time.monotonic() - quiet_from)
        print("\n==> phase 2: a newcomer")
        rows, more = add_newcomer(args, crowd, newcomer, background)
        pairs.update(more)
        table("Newcomer", rows)
        print("\n==> phase 3: the newcomer's goodbye (SIGTERM)")
        rows, more = goodbye(crowd, newcomer)
        pairs.update(more)
        table("Goodbye", rows)
        print(f"\n==> phase 4: {args.idle:g} s idle")
        rows, more = idle(args, crowd)
        pairs.update(more)
        table(f"Idle, per node: min / median / max over {args.nodes} nodes", rows)
        status = 0
    except TimeoutError as err:
        print(f"\nbench-lan: gave up: {err}", file=sys.stderr)
        table("How far the crowd got", how_far(crowd))
        pairs["failed"] = str(err).replace(" ", "_")
        status = 1
    finally:
        for agent in crowd + [newcomer]:
            if agent.proc and agent.proc.poll() is None:
                agent.proc.send_signal(signal.SIGTERM)
        for agent in crowd + [newcomer]:
            if agent.proc:
                try:
                    agent.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    agent.proc.kill()
    print()
    print(" ".join(f"{k}={v}" for k, v in pairs.items()))
    return status


if __name__ == "__main__":
    sys.exit(main())
