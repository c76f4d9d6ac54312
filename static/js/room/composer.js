// Sending: the composer (Enter sends, Shift+Enter adds a line), optimistic
// display and the outbox. Every message gets its messageId up front, so a
// retry can never store it twice; the outbox survives a reload in
// sessionStorage and is sent, in order, whenever the connection is back.
import { errorText } from '../api.js';
import { storage } from '../storage.js';
import { emit, on } from './bus.js';
import { ctx, call, signalQuietly } from './ctx.js';
import { $ } from './dom.js';
import { has, upsert, remove } from './messages.js';

const form = $('composer');
const input = $('message-input');
const sendBtn = $('send');

const outbox = new Map(); // messageId -> {payload, local, failed}
let flushing = false;
let again = false;
let retryTimer = 0;
let backoff = 1000;

const outboxKey = () => `chats3:outbox:${ctx.conversationId}:${ctx.me?.userId || ''}`;
const retryable = (err) => err.status === 0 || err.status === 408 || err.status === 429 || err.status >= 500;

function persist() {
  if (outbox.size) storage.set(outboxKey(), JSON.stringify([...outbox.values()]));
  else storage.remove(outboxKey());
}

/** Puts back what was still unsent when the page was reloaded. */
export function restoreOutbox() {
  let saved = [];
  try { saved = JSON.parse(storage.get(outboxKey()) || '[]'); } catch { /* corrupt: drop it */ }
  for (const item of Array.isArray(saved) ? saved : []) {
    const id = item?.payload?.messageId;
    // Already in history: it was stored before the reload; sending it again is pointless.
    if (!id || has(id)) continue;
    outbox.set(id, item);
    upsert(item.local, item.failed ? 'failed' : 'queued', item.failed || '');
  }
  persist();
  flush();
}

/** Shows a message at once and queues it for the server. */
export function enqueue(fields) {
  if (ctx.stopped || !ctx.me) return;
  const payload = { messageId: crypto.randomUUID(), type: 'text', body: '', clientTimestamp: new Date().toISOString(), ...fields };
  const local = { ...payload, senderUserId: ctx.me.userId, senderDisplayName: ctx.me.displayName, senderRole: ctx.me.role };
  outbox.set(payload.messageId, { payload, local, failed: '' });
  persist();
  upsert(local, 'pending');
  flush();
}

/** POSTs one message; true when it is stored (or will never be). */
async function deliver(id) {
  const item = outbox.get(id);
  if (!item || item.failed) return true;
  upsert(item.local, 'pending');
  try {
    const { details } = await call('/api/v1/messages', { method: 'POST', body: item.payload });
    outbox.delete(id);
    persist();
    upsert(details);
    return true;
  } catch (err) {
    if (err.status === 401) { emit('expired'); return false; }
    if (retryable(err)) {
      upsert(item.local, 'queued');
      if (err.retryAfter) backoff = err.retryAfter * 1000;
      return false;
    }
    item.failed = errorText(err); // the server refused it: only the user can decide
    persist();
    upsert(item.local, 'failed', item.failed);
    return true;
  }
}

/** Sends the outbox in order; on a transient failure waits for `live` or a backoff timer. */
export async function flush() {
  if (flushing) { again = true; return; }
  flushing = true;
  clearTimeout(retryTimer);
  try {
    do {
      again = false;
      for (const id of [...outbox.keys()]) {
        if (ctx.stopped) return;
        if (!(await deliver(id))) {
          retryTimer = setTimeout(flush, backoff);
          backoff = Math.min(backoff * 2, 30000);
          return;
        }
      }
      backoff = 1000;
    } while (again);
  } finally {
    flushing = false;
  }
}

on('live', () => { backoff = 1000; flush(); });
window.addEventListener('online', () => flush());

on('action:retry', ({ entry }) => {
  const item = outbox.get(entry.msg.messageId);
  if (!item) return;
  item.failed = '';
  persist();
  flush();
});
on('action:discard', ({ entry }) => {
  outbox.delete(entry.msg.messageId);
  persist();
  remove(entry.msg.messageId);
  input.focus();
});

// ---- typing ------------------------------------------------------------------------
let typingSent = false;
let typingTimer = 0;
export function stopTyping() {
  clearTimeout(typingTimer);
  if (typingSent && ctx.me && ctx.live) signalQuietly('typing-stop', { displayName: ctx.me.displayName });
  typingSent = false;
}
function noteTyping() {
  if (!ctx.me || !ctx.live) return;
  if (!input.value.trim()) return stopTyping();
  if (!typingSent) {
    typingSent = true;
    signalQuietly('typing-start', { displayName: ctx.me.displayName });
  }
  clearTimeout(typingTimer);
  typingTimer = setTimeout(stopTyping, 3000);
}

// ---- the form ------------------------------------------------------------------------
function autosize() {
  input.style.height = 'auto';
  input.style.height = `${Math.min(input.scrollHeight + 2, window.innerHeight * 0.4)}px`;
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const body = input.value;
  if (!ctx.me || ctx.stopped || !body.trim()) return;
  input.value = '';
  autosize();
  stopTyping();
  enqueue({ type: 'text', body });
  input.focus();
});

input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
    e.preventDefault();
    if (form.requestSubmit) form.requestSubmit(); else sendBtn.click();
  } else if (e.key === 'ArrowUp' && !input.value) {
    emit('edit-last'); // like most chat apps: ↑ in an empty box edits your last message
  }
});
input.addEventListener('input', () => { autosize(); noteTyping(); });

export function enableComposer(on) {
  input.disabled = sendBtn.disabled = !on;
  $('attach').disabled = !on;
  if (on) input.maxLength = ctx.config.limits.maxMessageLength;
}
on('leaving', stopTyping);
