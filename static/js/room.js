import { api, errorText, sessionKey, storage } from './api.js';

const $ = (id) => document.getElementById(id);
const list = $('messages');
const scroller = list.closest('.log');
const form = $('composer');
const input = $('message-input');
const sendBtn = $('send');
const peopleList = $('participants');
const connEl = $('connection-state');
const typingEl = $('typing');
const leaveBtn = $('leave');
const notice = $('room-notice');

// ---- identity ---------------------------------------------------------------
const conversationId = (() => {
  const v = document.querySelector('main[data-conversation-id]')?.getAttribute('data-conversation-id') || '';
  if (v && v !== '{{CONVERSATION_ID}}') return v;
  try { return decodeURIComponent(location.pathname.match(/^\/room\/([^/]+)/)?.[1] || ''); } catch { return ''; }
})();
const storeKey = sessionKey(conversationId);
const params = new URLSearchParams(location.search);
let sessionId = params.get('sessionId') || storage.get(storeKey) || null; // null → rely on the cookie
if (params.has('sessionId') && storage.set(storeKey, sessionId)) {
  // Keep the id out of the address bar / history once it is stored.
  params.delete('sessionId');
  const q = params.toString();
  history.replaceState(null, '', location.pathname + (q ? `?${q}` : '') + location.hash);
}
const joinUrl = `/join?conversationId=${encodeURIComponent(conversationId)}`;

let me = null;        // the session
let es = null;        // EventSource
let lastEventId = ''; // SSE id, used as ?cursor= for manual reconnects
let retryDelay = 3000;
let retryTimer = 0;
let stopped = false;  // session ended or leaving: no more reconnects

// ---- helpers ---------------------------------------------------------------
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
const sameName = (a, b) => String(a).trim().toLowerCase() === String(b).trim().toLowerCase();
const fmtTime = (iso) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
};
const nearBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
const scrollToBottom = () => { scroller.scrollTop = scroller.scrollHeight; };
function safeUrl(url) {
  try {
    const u = new URL(url, location.origin);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch { return null; }
}

function setConn(state) {
  connEl.textContent = state;
  connEl.dataset.state = state;
}

function endSession(text) {
  stopped = true;
  es?.close();
  clearTimeout(retryTimer);
  storage.remove(storeKey);
  setConn('offline');
  input.disabled = sendBtn.disabled = true;
  notice.replaceChildren(`${text} `, Object.assign(el('a', '', 'Join again'), { href: joinUrl }));
}
const expired = () => endSession('Session expired.');

// ---- messages ----------------------------------------------------------------
const messages = new Map(); // messageId -> {msg, el, status, error}
const outbox = new Map();   // messageId -> payload awaiting the server

function buildMessage(msg, status, error) {
  const li = el('li', 'message');
  li.dataset.messageId = msg.messageId;
  const system = msg.type === 'system' || msg.senderUserId === 'system';
  if (system) li.classList.add('system');
  else if (me && msg.senderUserId === me.userId) li.classList.add('mine');
  if (status) li.classList.add(status);

  const when = msg.serverReceivedAt || msg.clientTimestamp;
  if (!system) {
    const meta = el('div', 'meta');
    meta.append(el('span', 'sender', msg.senderDisplayName || 'Unknown'));
    if (when) meta.append(Object.assign(el('time', 'time', fmtTime(when)), { dateTime: when }));
    if (status === 'pending') meta.append(el('span', 'status', 'sending…'));
    li.append(meta);
  } else if (when) {
    li.title = new Date(when).toLocaleString();
  }
  li.append(el('p', 'body', msg.body ?? ''));

  if (msg.url || msg.filename) {
    const href = msg.url && safeUrl(msg.url);
    const label = msg.filename || 'Attachment';
    const link = href ? Object.assign(el('a', 'attachment', label), { href, target: '_blank', rel: 'noopener noreferrer' })
      : el('span', 'attachment', label);
    li.append(link);
  }
  if (status === 'failed') {
    const row = el('div', 'failure');
    row.append(el('span', 'error', error || 'Not sent.'), el('button', 'retry small', 'Retry'));
    row.lastChild.type = 'button';
    li.append(row);
  }
  return li;
}

function upsert(msg, status = '', error = '') {
  if (!msg || !msg.messageId) return;
  const prev = messages.get(msg.messageId);
  if (prev && !prev.status && status) return; // never downgrade a stored message
  const stick = nearBottom();
  const li = buildMessage(msg, status, error);
  if (prev) prev.el.replaceWith(li); else list.append(li);
  messages.set(msg.messageId, { msg, el: li, status, error });
  if (stick || status === 'pending') scrollToBottom();
}

async function loadHistory() {
  const { details } = await api('/api/v1/messages', { sessionId });
  const history = Array.isArray(details) ? details : details?.messages || [];
  const ids = new Set(history.map((m) => m.messageId));
  const last = history.length ? history[history.length - 1].serverReceivedAt || '' : '';
  // Keep local-only entries (pending/failed) and live ones newer than the history snapshot.
  const extras = [...messages.values()].filter((e) => !ids.has(e.msg.messageId)
    && (e.status || !last || (e.msg.serverReceivedAt || '') >= last));
  scroller.setAttribute('aria-busy', 'true');
  messages.clear();
  list.replaceChildren();
  for (const m of history) upsert(m);
  for (const e of extras) upsert(e.msg, e.status, e.error);
  scroller.removeAttribute('aria-busy');
  scrollToBottom();
}

const retryable = (err) => err.status === 0 || err.status === 429 || err.status >= 500;

async function deliver(payload, attempt = 0) {
  outbox.set(payload.messageId, payload);
  try {
    const { details } = await api('/api/v1/messages', { method: 'POST', body: payload, sessionId });
    outbox.delete(payload.messageId);
    upsert(details);
  } catch (err) {
    if (err.status === 401) return expired();
    const local = messages.get(payload.messageId)?.msg || payload;
    if (retryable(err) && attempt < 5) {
      const delay = err.retryAfter ? err.retryAfter * 1000 : 1000 * 2 ** attempt;
      setTimeout(() => deliver(payload, attempt + 1), delay); // same messageId: idempotent
    } else {
      upsert(local, 'failed', errorText(err));
    }
  }
}

function retry(messageId) {
  const payload = outbox.get(messageId);
  const entry = messages.get(messageId);
  if (!payload || !entry || entry.status !== 'failed') return;
  upsert(entry.msg, 'pending');
  deliver(payload);
}

list.addEventListener('click', (e) => {
  const btn = e.target.closest('button.retry');
  if (btn) retry(btn.closest('.message').dataset.messageId);
});

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const body = input.value;
  if (!me || !body.trim()) return;
  input.value = '';
  stopTyping();
  const payload = { messageId: crypto.randomUUID(), type: 'text', body, clientTimestamp: new Date().toISOString() };
  upsert({ ...payload, senderUserId: me.userId, senderDisplayName: me.displayName }, 'pending');
  deliver(payload);
  input.focus();
});

input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    if (form.requestSubmit) form.requestSubmit(); else sendBtn.click();
  }
});

// ---- participants ------------------------------------------------------------
const people = new Map(); // userId (or "name:<lower>" when only the name is known) -> {displayName, isMe}

function renderPeople() {
  const sorted = [...people.values()].sort((a, b) => (b.isMe - a.isMe) || a.displayName.localeCompare(b.displayName));
  peopleList.replaceChildren(...sorted.map((p) => el('li', p.isMe ? 'me' : '', p.isMe ? `${p.displayName} (you)` : p.displayName)));
  $('participant-count').textContent = `(${sorted.length})`;
}
function setPerson(userId, displayName, isMe = false) {
  if (!userId || userId === 'system' || !displayName) return;
  for (const [k, p] of people) if (k.startsWith('name:') && sameName(p.displayName, displayName)) people.delete(k);
  people.set(userId, { displayName, isMe: isMe || userId === me?.userId });
}
function applySystemMessage(body) {
  const joined = /^(.+) joined the conversation$/.exec(body || '');
  const left = /^(.+) left the conversation$/.exec(body || '');
  if (joined && ![...people.values()].some((p) => sameName(p.displayName, joined[1]))) {
    people.set(`name:${joined[1].toLowerCase()}`, { displayName: joined[1], isMe: false });
  }
  if (left) for (const [k, p] of people) if (!p.isMe && sameName(p.displayName, left[1])) people.delete(k);
}

// ---- typing ------------------------------------------------------------------
const typers = new Map(); // userId -> {name, timer}
function setTyping(userId, name, on) {
  const t = typers.get(userId);
  if (t) clearTimeout(t.timer);
  if (on) typers.set(userId, { name, timer: setTimeout(() => setTyping(userId, name, false), 6000) });
  else typers.delete(userId);
  const names = [...typers.values()].map((x) => x.name);
  typingEl.textContent = names.length === 0 ? ''
    : names.length === 1 ? `${names[0]} is typing…`
      : names.length === 2 ? `${names[0]} and ${names[1]} are typing…`
        : 'Several people are typing…';
}

let typingSent = false;
let typingTimer = 0;
const signal = (type, data) => api('/api/v1/signaling', { method: 'POST', body: { type, data }, sessionId }).catch(() => {});
function stopTyping() {
  clearTimeout(typingTimer);
  if (typingSent && me) signal('typing-stop', { displayName: me.displayName });
  typingSent = false;
}
input.addEventListener('input', () => {
  if (!me) return;
  if (!input.value.trim()) return stopTyping();
  if (!typingSent) {
    typingSent = true;
    signal('typing-start', { displayName: me.displayName });
  }
  clearTimeout(typingTimer);
  typingTimer = setTimeout(stopTyping, 2000);
});

// ---- live events ---------------------------------------------------------------
function onEvent(e) {
  if (e.lastEventId) lastEventId = e.lastEventId;
  let ev;
  try { ev = JSON.parse(e.data); } catch { return; }
  switch (ev.type) {
    case 'system':
      if (ev.data === 'connected') setConn('live');
      break;
    case 'room-state':
      people.clear();
      for (const p of ev.data?.participants || []) setPerson(p.userId, p.displayName, p.isMe);
      renderPeople();
      break;
    case 'resync':
      loadHistory().catch(showError);
      break;
    case 'new-message': {
      const m = ev.data;
      upsert(m);
      if (m?.type === 'system') applySystemMessage(m.body);
      else if (m) { setPerson(m.senderUserId, m.senderDisplayName); setTyping(m.senderUserId, '', false); }
      renderPeople();
      break;
    }
    case 'peer-leave':
      people.delete(ev.fromUserId);
      setTyping(ev.fromUserId, '', false);
      renderPeople();
      break;
    case 'typing-start':
    case 'typing-stop':
      if (ev.fromUserId && ev.fromUserId !== me?.userId) {
        setTyping(ev.fromUserId, ev.data?.displayName || 'Someone', ev.type === 'typing-start');
      }
      break;
    default:
      break;
  }
}

function connect() {
  clearTimeout(retryTimer);
  if (stopped) return;
  const q = new URLSearchParams();
  if (sessionId) q.set('sessionId', sessionId);
  if (lastEventId) q.set('cursor', lastEventId);
  const qs = q.toString();
  es = new EventSource(`/api/v1/signaling${qs ? `?${qs}` : ''}`);
  es.onopen = () => { setConn('live'); retryDelay = 3000; };
  es.onmessage = onEvent;
  for (const t of ['new-message', 'peer-leave', 'typing-start', 'typing-stop', 'room-state', 'resync']) {
    es.addEventListener(t, onEvent); // in case the server names its events
  }
  es.onerror = () => {
    if (stopped) return;
    setConn('reconnecting');
    if (es.readyState === EventSource.CLOSED) recover(); // the browser gave up (e.g. 401/503)
  };
}

async function recover() {
  es?.close();
  try {
    await api('/api/v1/session', { sessionId });
  } catch (err) {
    if (err.status === 401) return expired();
  }
  retryTimer = setTimeout(connect, retryDelay);
  retryDelay = Math.min(retryDelay * 2, 30000);
}

window.addEventListener('online', () => {
  if (!stopped && es?.readyState === EventSource.CLOSED) connect();
  for (const [id, entry] of messages) if (entry.status === 'failed') retry(id);
});

// ---- leave -------------------------------------------------------------------
leaveBtn.addEventListener('click', async () => {
  leaveBtn.disabled = true;
  stopTyping();
  stopped = true; // the server ends our stream; don't treat that as an error
  try {
    await api('/api/v1/leave', { method: 'POST', sessionId });
  } catch (err) {
    if (err.status !== 401) {
      stopped = false;
      leaveBtn.disabled = false;
      if (es?.readyState === EventSource.CLOSED) connect();
      return showError(err);
    }
  }
  es?.close();
  storage.remove(storeKey);
  location.assign(joinUrl);
});

// ---- start -------------------------------------------------------------------
function showError(err) {
  if (err?.status === 401) return expired();
  notice.textContent = errorText(err);
}

async function init() {
  $('room-title').textContent = conversationId || 'Conversation';
  if (conversationId) document.title = `${conversationId} · chats3`;
  setConn('connecting');
  try {
    me = (await api('/api/v1/session', { sessionId })).details;
  } catch (err) {
    if (err.status === 401) return expired();
    setConn('offline');
    return showError(err);
  }
  if (me.conversationId && conversationId && me.conversationId !== conversationId) {
    return endSession('Your session belongs to another conversation.');
  }
  input.disabled = sendBtn.disabled = false;
  connect(); // open the stream first so nothing falls between history and live events
  try { await loadHistory(); } catch (err) { showError(err); }
}

init();
