// The live event stream (EventSource): reconnect, resume and connection state.
// Events are re-emitted on the bus as `sse:<type>`; `live` fires each time a
// (re)connection is established so queued work can go out.
import { emit } from './bus.js';
import { ctx, call } from './ctx.js';
import { $ } from './dom.js';

const connEl = $('connection-state');

let es = null;
let lastEventId = '';   // the SSE id: the browser sends it as Last-Event-ID; we send it as ?cursor=
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

function dispatch(e) {
  if (e.lastEventId) lastEventId = e.lastEventId;
  let ev;
  try { ev = JSON.parse(e.data); } catch { return; }
  if (!ev || typeof ev.type !== 'string') return;
  if (ev.type === 'system') {
    if (ev.data === 'connected') markLive();
    return;
  }
  emit(`sse:${ev.type}`, ev);
}

export function connect() {
  clearTimeout(retryTimer);
  if (ctx.stopped) return;
  es?.close();
  opened = false;
  const q = new URLSearchParams();
  if (ctx.sessionId) q.set('sessionId', ctx.sessionId);
  if (lastEventId) q.set('cursor', lastEventId); // a manual reconnect resumes too
  const qs = q.toString();
  es = new EventSource(`/api/v1/signaling${qs ? `?${qs}` : ''}`);
  es.onmessage = dispatch; // the server names no events: each is a `message` with its type in the JSON
  es.onerror = onError;
}

function onError() {
  if (ctx.stopped) return;
  opened = false;
  setConn(navigator.onLine === false ? 'offline' : 'reconnecting');
  // CONNECTING: the browser retries by itself with Last-Event-ID.
  // CLOSED: it gave up (e.g. a 401 or 503 answer); we take over.
  if (es.readyState === EventSource.CLOSED) recover();
}

async function recover() {
  es?.close();
  try {
    await call('/api/v1/session');
  } catch (err) {
    if (err.status === 401) return emit('expired');
  }
  if (ctx.stopped) return;
  retryTimer = setTimeout(connect, retryDelay);
  retryDelay = Math.min(retryDelay * 2, 30000);
}

export function stopStream() {
  clearTimeout(retryTimer);
  es?.close();
  es = null;
}

window.addEventListener('offline', () => { if (!ctx.stopped) setConn('offline'); });
window.addEventListener('online', () => {
  // Don't wait for the browser's retry timer: reconnect now (resuming from lastEventId).
  if (!ctx.stopped && !ctx.live) connect();
});
