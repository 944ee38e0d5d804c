// The live peer table: a snapshot from /v1/events, then one change per event. EventSource
// reconnects by itself and resumes with Last-Event-ID; a new snapshot replaces the table.
'use strict';

const KINDS = ['joined', 'moved', 'restarted', 'left', 'expired', 'evicted', 'conflict', 'updated'];
const rows = new Map(); // hostname -> { tr, peer }
const tbody = document.querySelector('#peers tbody');
const state = document.getElementById('state');
const empty = document.getElementById('empty');
const log = document.getElementById('log');

function human(ms) {
  if (ms < 1000) return `${ms}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

function render(entry) {
  const { tr, peer } = entry;
  const cells = [
    peer.hostname,
    peer.address,
    peer.instance,
    human(Math.max(0, Date.now() - Date.parse(peer.first_seen))),
    peer.conflict ? `conflict: also announced from ${peer.conflict.address}` : '',
  ];
  cells.forEach((text, i) => { tr.children[i].textContent = text; });
  tr.classList.toggle('conflict', Boolean(peer.conflict));
}

function mark(tr) {
  tr.classList.remove('changed');
  void tr.offsetWidth; // restarts the animation
  tr.classList.add('changed');
}

function upsert(peer, changed) {
  let entry = rows.get(peer.hostname);
  if (!entry) {
    const tr = document.createElement('tr');
    tr.dataset.hostname = peer.hostname;
    for (let i = 0; i < 5; i += 1) tr.appendChild(document.createElement('td'));
    entry = { tr, peer };
    rows.set(peer.hostname, entry);
    const next = [...rows.keys()].sort().find((h) => h > peer.hostname);
    tbody.insertBefore(tr, next ? rows.get(next).tr : null);
  }
  entry.peer = peer;
  render(entry);
  if (changed) mark(entry.tr);
}

function remove(hostname) {
  const entry = rows.get(hostname);
  if (!entry) return;
  rows.delete(hostname);
  entry.tr.classList.add('gone');
  entry.tr.removeAttribute('data-hostname');
  setTimeout(() => entry.tr.remove(), 2000);
}

function showEmpty() {
  empty.hidden = rows.size > 0;
}

function snapshot(message) {
  const data = JSON.parse(message.data);
  const live = new Set(data.peers.map((p) => p.hostname));
  [...rows.keys()].filter((h) => !live.has(h)).forEach(remove);
  data.peers.forEach((peer) => upsert(peer, false));
  showEmpty();
}

function change(message) {
  const event = JSON.parse(message.data);
  if (event.event === 'left' || event.event === 'expired' || event.event === 'evicted') {
    remove(event.peer.hostname);
  } else {
    upsert(event.peer, true);
  }
  showEmpty();
  const item = document.createElement('li');
  item.className = event.event;
  item.textContent = `${event.time.slice(11, 19)}  ${event.event}  ${event.peer.hostname}  ${event.peer.address}`;
  log.prepend(item);
  while (log.children.length > 20) log.lastChild.remove();
}

function connect() {
  const source = new EventSource('/v1/events');
  source.onopen = () => {
    state.textContent = 'connected';
    state.className = 'connected';
  };
  source.onerror = () => {
    state.textContent = 'reconnecting…';
    state.className = 'reconnecting';
  };
  source.addEventListener('snapshot', snapshot);
  source.addEventListener('resync', snapshot);
  KINDS.forEach((kind) => source.addEventListener(kind, change));
}

fetch('/v1/status')
  .then((response) => response.json())
  .then((status) => {
    document.getElementById('self').textContent = `on ${status.hostname}`;
    document.title = `peerd on ${status.hostname}`;
  })
  .catch(() => {});
setInterval(() => rows.forEach(render), 1000);
connect();
