// The message list: one store keyed by messageId and its rendering. Other
// modules decorate a rendered message through the `message-rendered` event
// and react to its buttons through `action:<name>` events.
import { emit, on } from './bus.js';
import { ctx, isMine, isSystem } from './ctx.js';
import { $, el, button } from './dom.js';
import { renderAttachment } from './attachment-view.js';

export const list = $('messages');
export const scroller = list.closest('.log');
const jumpBtn = $('jump-latest');

const store = new Map(); // messageId -> {msg, el, status, error}; status '' = stored

const STATUS_TEXT = { pending: 'sending…', queued: 'queued, sends when back online' };

// ---- scrolling -----------------------------------------------------------------
export const nearBottom = (slack = 80) => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < slack;
export function scrollToBottom() {
  scroller.scrollTop = scroller.scrollHeight;
  jumpBtn.hidden = true;
}
scroller.addEventListener('scroll', () => { if (nearBottom()) jumpBtn.hidden = true; }, { passive: true });
jumpBtn.addEventListener('click', () => { scrollToBottom(); $('message-input').focus(); });

// A late image preview grows the list: keep the view pinned if it was at the bottom.
list.addEventListener('preview-loaded', (e) => { if (nearBottom(e.detail.height + 120)) scrollToBottom(); });

// ---- formatting ------------------------------------------------------------------
function fmtTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return d.toDateString() === new Date().toDateString() ? time
    : `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${time}`;
}

/** Own, stored, not deleted and inside the server's edit window (with a little slack). */
export function canModify(msg, status = '') {
  if (!isMine(msg) || status || msg.deleted || isSystem(msg)) return false;
  const at = Date.parse(msg.serverReceivedAt || '');
  return Number.isFinite(at) && Date.now() - at < ctx.config.editWindowMs - 3000;
}

function actionButton(action, text, label) {
  const b = button(`msg-action ${action}`, text, label);
  b.dataset.action = action;
  return b;
}

function buildMeta(msg, status, when) {
  const meta = el('div', 'meta');
  meta.append(el('span', 'sender', msg.senderDisplayName || 'Unknown'));
  if (when) meta.append(Object.assign(el('time', 'time', fmtTime(when)), { dateTime: when, title: new Date(when).toLocaleString() }));
  if (msg.editedAt && !msg.deleted) meta.append(el('span', 'edited', '(edited)'));
  if (STATUS_TEXT[status]) meta.append(el('span', 'status', STATUS_TEXT[status]));
  return meta;
}

function buildActions(msg, status) {
  const row = el('div', 'msg-actions');
  if (!status && !msg.deleted) {
    const react = actionButton('react', '☺+', 'Add a reaction');
    react.setAttribute('aria-haspopup', 'true');
    react.setAttribute('aria-expanded', 'false');
    row.append(react);
  }
  if (canModify(msg, status)) {
    if (msg.type !== 'file') row.append(actionButton('edit', 'Edit', 'Edit message'));
    row.append(actionButton('delete', 'Delete', 'Delete message'));
  }
  return row.childElementCount ? row : null;
}

function buildFailure(error) {
  const row = el('div', 'failure');
  row.append(el('span', 'error', error || 'Not sent.'),
    actionButton('retry', 'Retry', 'Retry sending'), actionButton('discard', 'Discard', 'Discard this message'));
  return row;
}

function buildMessage(msg, status, error) {
  const li = el('li', 'message');
  li.dataset.messageId = msg.messageId;
  const system = isSystem(msg);
  li.classList.toggle('system', system);
  li.classList.toggle('mine', !system && isMine(msg));
  li.classList.toggle('deleted', !!msg.deleted);
  if (status) li.classList.add(status);

  const when = msg.serverReceivedAt || msg.clientTimestamp;
  if (system) { if (when) li.title = new Date(when).toLocaleString(); } else {
    const meta = buildMeta(msg, status, when);
    const actions = buildActions(msg, status);
    if (actions) meta.append(actions);
    li.append(meta);
  }
  li.append(el('p', 'body', msg.deleted ? 'message deleted' : (msg.body ?? '')));
  if (!msg.deleted) {
    const att = renderAttachment(msg);
    if (att) li.append(att);
  }
  if (!system) {
    li.append(el('div', 'reactions'));
    if (isMine(msg)) li.append(el('p', 'receipt'));
  }
  if (status === 'failed') li.append(buildFailure(error));
  return li;
}

// ---- store ---------------------------------------------------------------------
export const get = (id) => store.get(id);
export const has = (id) => store.has(id);
/** Entries in display order. */
export const entries = () => [...list.children].map((li) => store.get(li.dataset.messageId)).filter(Boolean);

function render(entry) {
  const li = buildMessage(entry.msg, entry.status, entry.error);
  entry.el?.replaceWith(li);
  entry.el = li;
  emit('message-rendered', entry);
  return li;
}

/**
 * Adds or replaces a message (appended at the end when new).
 * A stored message is never downgraded back to pending/queued/failed.
 */
export function upsert(msg, status = '', error = '') {
  if (!msg || !msg.messageId) return null;
  const prev = store.get(msg.messageId);
  if (prev && !prev.status && status) return prev;
  const stick = nearBottom();
  const entry = prev || { el: null };
  Object.assign(entry, { msg, status, error });
  const li = render(entry);
  if (!prev) {
    list.append(li);
    store.set(msg.messageId, entry);
  }
  if (stick || (status && !prev)) scrollToBottom();
  else if (!prev && !isMine(msg)) jumpBtn.hidden = false;
  emit('message-changed', entry);
  return entry;
}

/** Applies a partial change (e.g. deletion) to a known message. */
export function patch(id, change) {
  const entry = store.get(id);
  if (entry) upsert({ ...entry.msg, ...change }, entry.status, entry.error);
}

export function remove(id) {
  const entry = store.get(id);
  if (!entry) return;
  entry.el.remove();
  store.delete(id);
  emit('message-changed', entry);
}

/** Puts older messages (oldest first) above the current ones, keeping the view still. */
export function prependOlder(msgs) {
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  const frag = document.createDocumentFragment();
  const added = [];
  for (const msg of msgs) {
    if (!msg?.messageId || store.has(msg.messageId)) continue;
    const entry = { msg, status: '', error: '', el: null };
    frag.append(render(entry));
    store.set(msg.messageId, entry);
    added.push(entry);
  }
  list.prepend(frag);
  scroller.scrollTop = scroller.scrollHeight - fromBottom;
  if (added.length) emit('message-changed', added[0]);
  return added.length;
}

/** Replaces everything with a fresh history page, keeping local-only and newer live entries. */
export function reset(history) {
  const ids = new Set(history.map((m) => m.messageId));
  const last = history.length ? history[history.length - 1].serverReceivedAt || '' : '';
  const extras = [...store.values()].filter((e) => !ids.has(e.msg.messageId)
    && (e.status || !last || (e.msg.serverReceivedAt || '') >= last));
  scroller.setAttribute('aria-busy', 'true');
  store.clear();
  list.replaceChildren();
  for (const m of history) upsert(m);
  for (const e of extras) upsert(e.msg, e.status, e.error);
  scroller.removeAttribute('aria-busy');
  scrollToBottom();
}

/** Re-renders own messages whose edit window just closed (drops their buttons). */
function expireActions() {
  for (const entry of store.values()) {
    if (entry.el.querySelector('[data-action="delete"]') && !canModify(entry.msg, entry.status)) render(entry);
  }
}
setInterval(expireActions, 15000);

// Buttons inside messages: one delegated listener, handled by the owning module.
list.addEventListener('click', (e) => {
  const btn = e.target.closest('button[data-action]');
  if (!btn || !list.contains(btn)) return;
  const li = btn.closest('.message');
  const entry = li && store.get(li.dataset.messageId);
  if (entry) emit(`action:${btn.dataset.action}`, { entry, button: btn, li });
});

// Live messages from the stream (our own come back from the POST instead).
on('sse:new-message', ({ data }) => upsert(data));
