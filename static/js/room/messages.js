// The message list: one store keyed by messageId and its rendering. Other
// modules decorate a rendered message through the `message-rendered` event
// and react to its buttons through `action:<name>` events. Runs of one
// sender within a few minutes are grouped (one avatar and name), and a day
// divider stands before each new day. The list is not a live region: each
// message from someone else is announced once, through #announcer.
import { emit, on } from './bus.js';
import { ctx, isMine, isSystem } from './ctx.js';
import { $, el, button } from './dom.js';
import { renderAttachment } from './attachment-view.js';
import { avatar } from './avatar.js';
import { formatBody } from './format.js';

export const list = $('messages');
export const scroller = list.closest('.log');
const jumpBtn = $('jump-latest');

const store = new Map(); // messageId -> {msg, el, status, error}; status '' = stored

const STATUS_TEXT = { pending: 'sending…', queued: 'queued, sends when back online' };
const GROUP_GAP_MS = 5 * 60 * 1000; // a pause longer than this starts a new group

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
const dateOf = (iso) => { const d = new Date(iso || ''); return Number.isNaN(d.getTime()) ? null : d; };
const fmtTime = (d) => d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

/** "Today", "Yesterday", "Monday 1 December", with the year when it is not this one. */
export function dayLabel(d) {
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (d.toDateString() === today.toDateString()) return 'Today';
  if (d.toDateString() === yesterday.toDateString()) return 'Yesterday';
  const opts = { weekday: 'long', day: 'numeric', month: 'long' };
  if (d.getFullYear() !== today.getFullYear()) opts.year = 'numeric';
  return d.toLocaleDateString([], opts);
}

const whenOf = (msg) => msg.serverReceivedAt || msg.clientTimestamp;

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
  const d = dateOf(when);
  if (d) meta.append(Object.assign(el('time', 'time', fmtTime(d)), { dateTime: when, title: d.toLocaleString() }));
  if (msg.editedAt && !msg.deleted) meta.append(el('span', 'edited', '(edited)'));
  if (STATUS_TEXT[status]) meta.append(el('span', 'status', STATUS_TEXT[status]));
  return meta;
}

function buildActions(msg, status) {
  const row = el('div', 'msg-actions');
  row.setAttribute('role', 'group');
  row.setAttribute('aria-label', 'Message actions');
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

function buildBody(msg) {
  const body = el('div', 'body');
  if (msg.deleted) body.textContent = 'message deleted';
  else body.append(...formatBody(msg.body ?? ''));
  return body;
}

function buildMessage(msg, status, error) {
  const li = el('li', 'message');
  li.dataset.messageId = msg.messageId;
  li.tabIndex = -1;
  const system = isSystem(msg);
  li.classList.toggle('system', system);
  li.classList.toggle('mine', !system && isMine(msg));
  li.classList.toggle('deleted', !!msg.deleted);
  if (status) li.classList.add(status);

  const when = whenOf(msg);
  if (system) {
    const d = dateOf(when);
    if (d) li.title = d.toLocaleString();
    li.append(buildBody(msg));
    return li;
  }
  li.append(avatar(msg.senderUserId, msg.senderDisplayName, msg.senderAvatarUrl));
  const content = el('div', 'content');
  content.append(buildMeta(msg, status, when), buildBody(msg));
  if (!msg.deleted) {
    const att = renderAttachment(msg);
    if (att) content.append(att);
  }
  content.append(el('div', 'reactions'));
  if (isMine(msg)) content.append(el('p', 'receipt'));
  if (status === 'failed') content.append(buildFailure(error));
  li.append(content);
  const actions = buildActions(msg, status);
  if (actions) li.append(actions);
  return li;
}

// ---- grouping and day dividers -------------------------------------------------------
/** True when `msg` continues the run of `prev` (same sender, same day, a short pause). */
function continues(prev, msg) {
  if (!prev || isSystem(prev) || isSystem(msg) || prev.senderUserId !== msg.senderUserId) return false;
  const a = dateOf(whenOf(prev));
  const b = dateOf(whenOf(msg));
  return !!a && !!b && a.toDateString() === b.toDateString() && b - a >= 0 && b - a < GROUP_GAP_MS;
}

function divider(day, label) {
  const li = el('li', 'day-divider');
  li.dataset.day = day;
  li.append(el('span', '', label));
  return li;
}

/** Marks runs and puts day dividers where the day changes (and only there). */
function regroup() {
  let prev = null;
  let prevDay = '';
  const wanted = new Set();
  const today = new Date().toDateString();
  for (const li of list.querySelectorAll(':scope > li.message')) {
    const entry = store.get(li.dataset.messageId);
    if (!entry) continue;
    const d = dateOf(whenOf(entry.msg));
    const day = d ? d.toDateString() : prevDay;
    // A divider before each new day; none above a list that is all today.
    if (d && day !== prevDay && (prevDay || day !== today)) {
      const before = li.previousElementSibling;
      const existing = before?.classList.contains('day-divider') && before.dataset.day === day ? before : null;
      wanted.add(existing || li.insertAdjacentElement('beforebegin', divider(day, dayLabel(d))));
    }
    li.classList.toggle('continued', continues(prev?.msg, entry.msg));
    prev = entry;
    prevDay = day;
  }
  for (const dv of list.querySelectorAll(':scope > li.day-divider')) if (!wanted.has(dv)) dv.remove();
}

// ---- announcements -----------------------------------------------------------------------
const announcer = $('announcer');
/** Says one line to screen readers (the log itself is not a live region). */
export function announce(text) {
  announcer.textContent = '';
  // A fresh text node, so the same words twice in a row are still spoken.
  setTimeout(() => { announcer.textContent = text; }, 50);
}

function describe(msg) {
  if (isSystem(msg)) return msg.body || '';
  const what = msg.body || (msg.filename ? `sent ${msg.filename}` : 'sent a message');
  return `${msg.senderDisplayName || 'Someone'}: ${what}`;
}

// ---- store ---------------------------------------------------------------------
export const get = (id) => store.get(id);
export const has = (id) => store.has(id);
/** Entries in display order. */
export const entries = () => [...list.querySelectorAll(':scope > li.message')].map((li) => store.get(li.dataset.messageId)).filter(Boolean);

/** (Re)builds a message's element; focus inside the old one moves to the new one. */
function render(entry) {
  const li = buildMessage(entry.msg, entry.status, entry.error);
  const old = entry.el;
  const focused = old?.contains(document.activeElement) ? document.activeElement : null;
  if (old) {
    li.classList.toggle('continued', old.classList.contains('continued'));
    if (old.tabIndex === 0) li.tabIndex = 0;
    old.replaceWith(li);
  }
  entry.el = li;
  emit('message-rendered', entry);
  if (focused) {
    const action = focused.dataset?.action;
    (action && li.querySelector(`[data-action="${action}"]`) || li).focus({ preventScroll: true });
  }
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
  regroup();
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
  regroup();
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
  regroup();
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

// Live messages from the stream (our own come back from the POST instead);
// each new one from someone else is announced once.
on('sse:new-message', ({ data }) => {
  const fresh = data?.messageId && !has(data.messageId);
  upsert(data);
  if (fresh && !isMine(data)) announce(describe(data));
});
