"""The measuring half of bin/bench-ingest: fills stopped receivers' sockets, times the drains.

Run by bin/bench-ingest inside its network namespace, never on its own:

    drain.py measure ROUNDS WORK RECEIVER...  RECEIVER = NAME,KIND,PID,GROUP,PORT,API|COUNTS[,SECRET]
    drain.py report WORK BASELINE              the table, each receiver against BASELINE

KIND is `agent` (API is its HTTP API, whose /v1/status counters say what it read) or `loop`
(COUNTS is the file the recv-loop example prints its count to on SIGUSR1). An agent with
SECRET (a secret file) gets signed beacons. For each of ROUNDS sets of fresh hostnames, every
receiver gets a join round (each hostname new to it), then every receiver a renewal round (the
same hostnames, sequence number one higher), interleaved so that drift in the machine's speed
falls on all of them alike. One round:

  1. SIGSTOP the receiver; wait until it is stopped; read its CPU time (schedstat) and counters.
  2. Send valid beacons to its group until its socket's queue (rx_queue, /proc/net/udp) holds
     about 90 % of its receive buffer (ss's rb): the largest burst it takes without a drop.
  3. SIGCONT; poll rx_queue until it is empty (wall time), then until every thread sleeps
     again (CPU time, precise and independent of the polling).
  4. Read its counters again: every datagram the socket queued must have been read and taken
     in (no kernel drop, no `stale` discard, no refusal).

Appends one line per round to WORK/rounds: receiver, round kind, datagrams queued, drops at the
socket and before it (softnet), datagrams read, CPU ns, wall ns.
"""

import hashlib
import hmac
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request

FILL = 0.90  # of the receive buffer: below the kernel's drop threshold with a chunk's margin
CHUNK = 32  # datagrams sent between two looks at the queue
STOP_BUDGET = 0.5  # seconds a receiver may stay stopped: the agent discards a queue after 1 s
NAMES = 8192  # hostnames per set: more than any buffer here holds


def udp_line(inode):
    """The /proc/net/udp fields of the socket with this inode."""
    with open("/proc/self/net/udp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[9] == inode:
                return fields
    raise RuntimeError(f"no UDP socket with inode {inode}")


def rx_queue(inode):
    return int(udp_line(inode)[4].split(":")[1], 16)


def socket_drops(inode):
    return int(udp_line(inode)[-1])


def softnet_drops():
    """Datagrams dropped before any socket, backlog full (second column, hex, per CPU)."""
    with open("/proc/net/softnet_stat") as stat:
        return sum(int(line.split()[1], 16) for line in stat)


def socket_inode(pid, port):
    """The inode of PID's UDP socket bound to PORT."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    with open("/proc/self/net/udp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[9] in inodes and int(fields[1].split(":")[1], 16) == port:
                return fields[9]
    raise RuntimeError(f"process {pid} has no UDP socket on port {port}")


def receive_buffer(inode):
    """The socket's receive buffer as the kernel sized it (ss's skmem rb)."""
    out = subprocess.run(["ss", "-uamnpe"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if f"ino:{inode} " in line + " ":
            for later in lines[i : i + 2]:
                if "rb" in later and "skmem:(" in later:
                    skmem = later.split("skmem:(")[1].split(")")[0]
                    return int(next(f[2:] for f in skmem.split(",") if f.startswith("rb")))
    raise RuntimeError(f"ss does not show the receive buffer of socket {inode}")


def cpu_ns(pid):
    """Nanoseconds on CPU of all PID's threads (first field of schedstat)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as stat:
            total += int(stat.read().split()[0])
    return total


def states(pid):
    result = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/stat") as stat:
            result.append(stat.read().rsplit(")", 1)[1].split()[0])
    return result


def wait_for(what, check, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")


class Receiver:
    def __init__(self, spec, work):
        parts = spec.split(",")
        self.name, self.kind, pid, self.group, port = parts[:5]
        self.pid, self.port = int(pid), int(port)
        self.inode = socket_inode(self.pid, self.port)
        self.rcvbuf = receive_buffer(self.inode)
        self.secret = None
        if self.kind == "agent":
            self.api = parts[5]
            if len(parts) > 6:
                with open(parts[6], "rb") as f:
                    self.secret = f.read().rstrip()
                self.key_id = hmac.new(self.secret, b"peerd key id", hashlib.sha256).digest()[:4]
        else:
            self.counts = parts[5]
        self.out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.out.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        self.out.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        self.out.connect((self.group, self.port))
        self.work = work

    def counters(self):
        """(datagrams read from others, of which discarded as stale or refused)."""
        if self.kind == "agent":
            with urllib.request.urlopen(f"http://{self.api}/v1/status", timeout=5) as reply:
                status = json.load(reply)
            refused = status["refused"]
            read = status["beacons_received"] + status["datagrams_ignored"]
            return read, status["datagrams_ignored"], refused["stale"]
        # The loop prints its count on SIGUSR1; wait for the new line.
        before = self.count_lines()
        os.kill(self.pid, signal.SIGUSR1)
        wait_for("the recv loop's count", lambda: len(self.count_lines()) > len(before))
        return int(self.count_lines()[-1]), 0, 0

    def count_lines(self):
        with open(self.counts) as f:
            return f.read().split()

    def beacon(self, name, instance, sequence):
        host = name.encode()
        datagram = b"PEER\x01\x00" + struct.pack(">QQB", instance, sequence, len(host)) + host
        if self.secret is not None:
            millis = int(time.time() * 1000)
            datagram += b"\x02\x00\x08" + struct.pack(">Q", millis)
            datagram += b"\x03\x00\x24" + self.key_id
            datagram += hmac.new(self.secret, datagram, hashlib.sha256).digest()
        return datagram

    def round(self, kind, names, sequence):
        # Built before the stop, so the receiver stays stopped only while the queue fills.
        datagrams = [self.beacon(name, 1_000_000 + i, sequence) for i, name in enumerate(names)]
        read0, ignored0, stale0 = self.counters()
        # Done with that request (hyper closes the connection after the reply), so its tail
        # is not counted in the drain.
        wait_for("the receiver to sleep", lambda: all(s == "S" for s in states(self.pid)))
        os.kill(self.pid, signal.SIGSTOP)
        try:
            wait_for("the receiver to stop", lambda: all(s == "T" for s in states(self.pid)))
            stopped = time.monotonic()
            cpu0 = cpu_ns(self.pid)
            drops0, softnet0 = socket_drops(self.inode), softnet_drops()
            queued0 = rx_queue(self.inode)  # normally 0: the receiver was idle
            sent = 0
            limit = FILL * self.rcvbuf
            while sent < len(datagrams) and time.monotonic() - stopped < STOP_BUDGET:
                for datagram in datagrams[sent : sent + CHUNK]:
                    self.out.send(datagram)
                sent = min(sent + CHUNK, len(datagrams))
                queue = rx_queue(self.inode)
                if queue + 2 * CHUNK * (queue - queued0) / sent > limit:
                    break
            if sent == len(datagrams):
                raise RuntimeError("ran out of hostnames before the queue filled: raise NAMES")
            drops = socket_drops(self.inode) - drops0
            softnet = softnet_drops() - softnet0
            start = time.monotonic_ns()
        finally:
            os.kill(self.pid, signal.SIGCONT)
        wait_for("the queue to drain", lambda: rx_queue(self.inode) == 0)
        drained = time.monotonic_ns()
        wait_for("the receiver to sleep", lambda: all(s == "S" for s in states(self.pid)))
        cpu = cpu_ns(self.pid) - cpu0
        read1, ignored1, stale1 = self.counters()
        read = read1 - read0
        with open(os.path.join(self.work, "rounds"), "a") as out:
            fields = [self.name, kind, sent, drops, softnet, read, ignored1 - ignored0,
                      stale1 - stale0, cpu, drained - start]
            print(*fields, file=out)


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def report(work, baseline):
    """One row per receiver and round kind: median rates, the ratio to BASELINE's, losses."""
    rows = {}
    with open(os.path.join(work, "rounds")) as f:
        for line in f:
            name, kind, *numbers = line.split()
            sent, drops, softnet, read, ignored, stale, cpu, wall = map(int, numbers)
            row = rows.setdefault((name, kind), {"cpu": [], "wall": [], "n": [], "lost": 0,
                                                 "drops": 0, "softnet": 0, "refused": 0})
            row["cpu"].append(read / cpu * 1e9)
            row["wall"].append(read / wall * 1e9)
            row["n"].append(read)
            row["drops"] += drops
            row["softnet"] += softnet
            # Queued (sent less the socket's drops) but not taken in, or read and thrown away.
            row["lost"] += sent - drops - read + stale
            row["refused"] += ignored - stale
    failed = []
    print("| receiver | round | rounds | datagrams per round | rate by CPU time | rate by wall time "
          "| ratio to the loop (CPU / wall) | socket drops | lost or refused |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for (name, kind), row in rows.items():
        base = rows.get((baseline, kind))
        cpu, wall = median(row["cpu"]), median(row["wall"])
        ratio = f"{cpu / median(base['cpu']):.2f} / {wall / median(base['wall']):.2f}" if base else "-"
        print(f"| {name} | {kind} | {len(row['n'])} | {median(row['n']):,.0f} | {cpu:,.0f} /s "
              f"| {wall:,.0f} /s | {ratio} | {row['drops']} | {row['lost']} / {row['refused']} |")
        if row["lost"] or row["refused"]:
            failed.append(f"{name} ({kind}) lost {row['lost']} and refused {row['refused']} datagrams")
    softnet = sum(row["softnet"] for row in rows.values())
    if softnet:
        print(f"\n{softnet} datagrams were dropped before reaching any socket (softnet backlog)")
    for failure in failed:
        print(f"FAILED: {failure}")
    return 1 if failed else 0


def main():
    if sys.argv[1] == "report":
        sys.exit(report(sys.argv[2], sys.argv[3]))
    rounds, work, specs = int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    receivers = [Receiver(spec, work) for spec in specs]
    for r in receivers:
        print(f"    {r.name}: socket {r.inode}, receive buffer {r.rcvbuf} bytes", flush=True)
    for n in range(rounds):
        names = [f"ingest-{n:03d}-{i:05d}" for i in range(NAMES)]
        for r in receivers:
            r.round("join", names, 0)
        for r in receivers:
            r.round("renewal", names, 1)
        print(f"    set {n + 1}/{rounds} done", flush=True)


if __name__ == "__main__":
    main()
