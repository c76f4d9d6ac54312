// The live event stream: a WebSocket (/api/v1/ws) where one opens, else
// Server-Sent Events (/api/v1/signaling), e.g. behind a proxy that refuses
// upgrades. Both resume from the last sequence seen (?cursor=), so a
// reconnect, or the switch to SSE, misses nothing. Reconnect, resume and
// connection state live here. Events are re-emitted on the bus as
// `sse:<type>` whatever carried them; `live` fires each time a
// (re)connection is established so queued work can go out.
import { emit } from './bus.js';
import { ctx, call } from './ctx.js';
import { $ } from './dom.js';

const connEl = $('connection-state');

let ws = null;
let es = null;
// 'websocket' until a socket fails to open while the server answers HTTP:
// then 'sse' for the rest of the page's life.
let transport = typeof WebSocket === 'function' ? 'websocket' : 'sse';
let lastEventId = '';   // the last sequence: the socket's `seq`, the SSE id (Last-Event-ID); we send it as ?cursor=
let retryDelay = 1000;
let retryTimer = 0;
let opened = false;     // `live` already announced for this connection

/** Sets the visible state: 'live', 'connecting', 'reconnecting' or 'offline'. */
export function setConn(state) {
  connEl.textContent = state;
  connEl.dataset.state = state;
  const wasLive = ctx.live;
  ctx.live = state === 'live';
  if (wasLive !== ctx.live) emit('conn', state);
}

function markLive() {
  retryDelay = 1000;
  setConn('live');
  if (!opened) { opened = true; emit('live'); }
}

/** One event's JSON, as both carriers deliver it. */
function handle(ev) {
  if (!ev || typeof ev.type !== 'string') return;
  if (ev.type === 'system') {
    if (ev.data === 'connected') markLive();
    return;
  }
  emit(`sse:${ev.type}`, ev);
}

function parse(text) {
  try { return JSON.parse(text); } catch { return null; }
}

/** The stream's query: the session (EventSource cannot send headers) and where to resume. */
function query() {
  const q = new URLSearchParams();
  if (ctx.sessionId) q.set('sessionId', ctx.sessionId);
  if (lastEventId) q.set('cursor', lastEventId); // a manual reconnect resumes too
  const qs = q.toString();
  return qs ? `?${qs}` : '';
}

export function connect() {
  clearTimeout(retryTimer);
  if (ctx.stopped) return;
  closeAll();
  opened = false;
  connEl.dataset.transport = transport;
  if (transport === 'websocket') openSocket(); else openEventSource();
}

function openSocket() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(`${scheme}//${location.host}/api/v1/ws${query()}`);
  let upgraded = false;
  socket.onopen = () => { upgraded = true; };
  socket.onmessage = (e) => {
    const frame = parse(e.data);
    if (!frame || typeof frame !== 'object' || !('event' in frame)) return; // acks: we send no commands
    if (frame.seq !== null && frame.seq !== undefined) lastEventId = String(frame.seq);
    handle(frame.event);
  };
  socket.onclose = () => {
    if (ws !== socket) return; // closed on purpose
    ws = null;
    lost();
    recover(!upgraded);
  };
  ws = socket;
}

function openEventSource() {
  es = new EventSource(`/api/v1/signaling${query()}`);
  es.onmessage = (e) => { // the server names no events: each is a `message` with its type in the JSON
    if (e.lastEventId) lastEventId = e.lastEventId;
    handle(parse(e.data));
  };
  es.onerror = () => {
    if (ctx.stopped) return;
    lost();
    // CONNECTING: the browser retries by itself with Last-Event-ID.
    // CLOSED: it gave up (e.g. a 401 or 503 answer); we take over.
    if (es.readyState === EventSource.CLOSED) recover(false);
  };
}

function lost() {
  if (ctx.stopped) return;
  opened = false;
  setConn(navigator.onLine === false ? 'offline' : 'reconnecting');
}

/**
 * Reconnects after a delay, unless the session is gone. A socket that
 * never opened while the server still answers was refused on the way
 * (a proxy without upgrades): the stream goes on over SSE at once.
 */
async function recover(neverOpened) {
  if (ctx.stopped) return;
  closeAll();
  let reached = false;
  try {
    await call('/api/v1/session');
    reached = true;
  } catch (err) {
    if (err.status === 401) return emit('expired');
    reached = err.status > 0;
  }
  if (ctx.stopped) return;
  if (neverOpened && reached && transport === 'websocket') {
    transport = 'sse';
    return connect();
  }
  retryTimer = setTimeout(connect, retryDelay);
  retryDelay = Math.min(retryDelay * 2, 30000);
}

function closeAll() {
  const socket = ws;
  ws = null;
  socket?.close();
  es?.close();
  es = null;
}

export function stopStream() {
  clearTimeout(retryTimer);
  closeAll();
}

window.addEventListener('offline', () => { if (!ctx.stopped) setConn('offline'); });
window.addEventListener('online', () => {
  // Don't wait for a retry timer: reconnect now (resuming from lastEventId).
  if (!ctx.stopped && !ctx.live) connect();
});
