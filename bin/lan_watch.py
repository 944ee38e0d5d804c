"""Part of bin/bench-lan: `peerd watch --json` on each agent's API, as a client would run it,
and when each client saw every other agent listed, by the client's clock (the time it read the
line). The agents' own clocks say when a peer was listed; this says when somebody watching could
act on it: the stream's latency and a watcher's share of two busy cores included.
Standard library only.
"""

import json
import socket
import subprocess
import threading
import time

# Between two attempts to reach an agent's API before it listens: a refused connection costs
# nothing, and a client polls so.
CONNECT_PAUSE = 0.005
# The changes that leave a peer listed, and those that take it off.
LISTED = {"joined", "moved", "restarted", "updated"}
UNLISTED = {"left", "expired", "evicted"}


class Watcher:
    """One `peerd watch --json --api ADDR` on one agent, started once the API listens."""

    def __init__(self, binary, addr, port):
        host = f"[{addr}]" if ":" in addr else addr
        self.argv = [binary, "watch", "--json", "--api", f"{host}:{port}"]
        self.endpoint = (addr, port)
        self.seen = {}  # hostname: when this client first read it listed (time.time())
        self.proc = None
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def listening(self):
        try:
            socket.create_connection(self.endpoint, timeout=1).close()
            return True
        except OSError:
            return False

    def run(self):
        while not self.stopped.is_set() and not self.listening():
            time.sleep(CONNECT_PAUSE)
        if self.stopped.is_set():
            return
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        if self.stopped.is_set():  # stopped while it started: stop() may have missed it
            self.proc.terminate()
            self.proc.wait()
        live = set()
        for line in self.proc.stdout:
            read_at = time.time()
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "peers" in message:  # the snapshot, or a resync
                live = {peer["hostname"] for peer in message["peers"]}
            elif message.get("event") in LISTED:
                live.add(message["peer"]["hostname"])
            elif message.get("event") in UNLISTED:
                live.discard(message["peer"]["hostname"])
            for name in live:
                self.seen.setdefault(name, read_at)

    def saw_all(self, names):
        """When this client had read every one of `names` listed, or None."""
        times = [self.seen.get(name) for name in names]
        return None if None in times else max(times)

    def stop(self):
        self.stopped.set()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
        if self.proc:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def watch_all(binary, agents, port):
    """A watcher on each of `agents` (each with .addr and .name), started now."""
    watchers = {agent.name: Watcher(binary, agent.addr, port) for agent in agents}
    for watcher in watchers.values():
        watcher.thread.start()
    return watchers


def all_seen(watchers, names):
    """When the last watcher had read all of `names` but its own agent listed, or None."""
    times = [w.saw_all(names - {name}) for name, w in watchers.items()]
    return None if None in times else max(times)
