// Sending: the composer (Enter sends, Shift+Enter adds a line), optimistic
// display and the outbox. Every message gets its messageId up front, so a
// retry can never store it twice; the outbox is kept per room in this tab's
// sessionStorage, so it survives a reload and an expired session (it goes
// out under the new session after "Join again"), and is sent, in order,
// whenever the connection is back. A closed room sends nothing.
import { errorText } from '../api.js';
import { storage } from '../storage.js';
import { emit, on } from './bus.js';
import { ctx, call, signalQuietly } from './ctx.js';
import { $ } from './dom.js';
import { showNotice } from './notice.js';
import { has, upsert, remove } from './messages.js';

const form = $('composer');
const input = $('message-input');
const sendBtn = $('send');

const outbox = new Map(); // messageId -> {payload, local, failed}
let flushing = false;
let again = false;
let retryTimer = 0;
let backoff = 1000;

/** The text of a send refused because the room is closed. */
const CLOSED_TEXT = 'Not sent: this conversation is closed.';

const outboxKey = () => `chats3:outbox:${ctx.conversationId}`;
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
    // Typed under a session that has since expired: it goes out as the one joined now.
    item.local = { ...item.local, ...sender() };
    if (ctx.closed && !item.failed) item.failed = CLOSED_TEXT;
    outbox.set(id, item);
    upsert(item.local, item.failed ? 'failed' : 'queued', item.failed || '');
  }
  persist();
  flush();
}

const sender = () => ({
  senderUserId: ctx.me.userId, senderDisplayName: ctx.me.displayName, senderRole: ctx.me.role,
  senderAvatarUrl: ctx.me.avatarUrl || undefined,
});

/** Shows a message at once and queues it for the server; false when it cannot be sent. */
export function enqueue(fields) {
  if (ctx.stopped || !ctx.me) return false;
  if (ctx.closed) { showNotice(CLOSED_TEXT); return false; }
  const payload = { messageId: crypto.randomUUID(), type: 'text', body: '', clientTimestamp: new Date().toISOString(), ...fields };
  const local = { ...payload, ...sender() };
  outbox.set(payload.messageId, { payload, local, failed: '' });
  persist();
  upsert(local, 'pending');
  flush();
  return true;
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
    if (err.status === 401) { upsert(item.local, 'queued'); emit('expired'); return false; }
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
        if (ctx.stopped || ctx.closed) return;
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
  if (ctx.closed) { showNotice(CLOSED_TEXT); return; }
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

// The room closed: what is still unsent will not be, and says so.
on('closed', () => {
  for (const item of outbox.values()) {
    if (item.failed) continue;
    item.failed = CLOSED_TEXT;
    upsert(item.local, 'failed', item.failed);
  }
  persist();
});
// Leaving on purpose drops what was not sent yet.
on('left', () => { outbox.clear(); persist(); });

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
  stopTyping();
  if (!enqueue({ type: 'text', body })) return;
  input.value = '';
  autosize();
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

/** The text in the message box, taken out of it (a file's caption). */
export function takeCaption() {
  const text = input.value.trim() ? input.value : '';
  if (text) { input.value = ''; autosize(); stopTyping(); }
  return text;
}

/** Puts a caption back in an empty box when its file was not sent. */
export function giveBackCaption(text) {
  if (text && !input.value) { input.value = text; autosize(); }
}

/** Puts the caret in the message box (on load: typing is what people come for). */
export function focusComposer() {
  if (!input.disabled) input.focus({ preventScroll: true });
}

export function enableComposer(on) {
  input.disabled = sendBtn.disabled = !on;
  $('attach').disabled = !on;
  if (on) input.maxLength = ctx.config.limits.maxMessageLength;
}
on('leaving', stopTyping);
