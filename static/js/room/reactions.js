// Reactions: counts under each message, a small picker, click to toggle.
// The server keeps one emoji per user per message; we mirror that locally so
// an optimistic change looks exactly like the answer will.
import { on } from './bus.js';
import { ctx, call } from './ctx.js';
import { el, button } from './dom.js';
import { showNotice } from './notice.js';
import { get } from './messages.js';
import { nameOf } from './people.js';

export const EMOJIS = ['👍', '❤️', '😂', '😮', '😢', '🎉'];
const byMessage = new Map(); // messageId -> Map(emoji -> Set(userId))
let openPicker = null;       // {picker, trigger}

function setReaction(messageId, emoji, userId, added) {
  let emojis = byMessage.get(messageId);
  if (!emojis) byMessage.set(messageId, (emojis = new Map()));
  if (added) for (const [e, users] of emojis) if (e !== emoji) users.delete(userId); // one per user
  const users = emojis.get(emoji) || new Set();
  if (added) users.add(userId); else users.delete(userId);
  emojis.set(emoji, users);
  for (const [e, u] of emojis) if (!u.size) emojis.delete(e);
  paint(messageId);
}

function chip(emoji, users) {
  const mine = users.has(ctx.me?.userId);
  const b = button('reaction', `${emoji} ${users.size}`);
  b.dataset.action = 'toggle-reaction';
  b.dataset.emoji = emoji;
  b.setAttribute('aria-pressed', String(mine));
  b.setAttribute('aria-label', `${emoji} ${users.size} ${users.size === 1 ? 'reaction' : 'reactions'}${mine ? ', including yours' : ''}`);
  b.title = [...users].map((u) => (u === ctx.me?.userId ? 'You' : nameOf(u))).join(', ');
  return b;
}

function paint(messageId) {
  const box = get(messageId)?.el.querySelector('.reactions');
  if (!box) return;
  const emojis = byMessage.get(messageId) || new Map();
  box.replaceChildren(...[...emojis].map(([emoji, users]) => chip(emoji, users)));
}

async function toggle(messageId, emoji) {
  const userId = ctx.me?.userId;
  const entry = get(messageId);
  if (!userId || !entry || entry.status || entry.msg.deleted) return;
  const added = !byMessage.get(messageId)?.get(emoji)?.has(userId);
  setReaction(messageId, emoji, userId, added);
  try {
    await call('/api/v1/reactions', { method: 'POST', body: { messageId, emoji, added } });
  } catch (err) {
    showNotice(err, { transient: true });
    loadReactions(); // put back what the server really has
  }
}

export async function loadReactions() {
  try {
    const { details } = await call('/api/v1/reactions');
    byMessage.clear();
    for (const [messageId, emojis] of Object.entries(details || {})) {
      const map = new Map();
      for (const [emoji, users] of Object.entries(emojis || {})) if (Array.isArray(users) && users.length) map.set(emoji, new Set(users));
      byMessage.set(messageId, map);
    }
  } catch { return; }
  for (const li of document.querySelectorAll('#messages .message')) paint(li.dataset.messageId);
}

// ---- the picker ------------------------------------------------------------------------------
function closePicker(focusBack = false) {
  if (!openPicker) return;
  const { picker, trigger } = openPicker;
  openPicker = null;
  picker.remove();
  trigger.setAttribute('aria-expanded', 'false');
  if (focusBack && trigger.isConnected) trigger.focus();
}

function showPicker(trigger, li) {
  const reopen = openPicker?.trigger === trigger;
  closePicker();
  if (reopen) return;
  const picker = el('div', 'reaction-picker');
  picker.setAttribute('role', 'group');
  picker.setAttribute('aria-label', 'Pick a reaction');
  for (const emoji of EMOJIS) {
    const b = button('pick', emoji, `React with ${emoji}`);
    b.dataset.action = 'pick-reaction';
    b.dataset.emoji = emoji;
    picker.append(b);
  }
  picker.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { e.stopPropagation(); closePicker(true); }
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      const items = [...picker.children];
      const i = items.indexOf(document.activeElement);
      items[(i + (e.key === 'ArrowRight' ? 1 : items.length - 1)) % items.length].focus();
    }
  });
  li.querySelector('.reactions').after(picker);
  trigger.setAttribute('aria-expanded', 'true');
  openPicker = { picker, trigger, li };
  picker.scrollIntoView({ block: 'nearest' }); // near the bottom of the log it would open out of sight
  picker.firstChild.focus({ preventScroll: true });
}

document.addEventListener('click', (e) => {
  if (openPicker && !openPicker.picker.contains(e.target) && e.target !== openPicker.trigger) closePicker();
});

// ---- wiring --------------------------------------------------------------------------------------
on('action:react', ({ button: trigger, li }) => showPicker(trigger, li));
on('action:pick-reaction', ({ entry, button: b }) => { closePicker(true); toggle(entry.msg.messageId, b.dataset.emoji); });
on('action:toggle-reaction', ({ entry, button: b }) => toggle(entry.msg.messageId, b.dataset.emoji));
on('message-rendered', (entry) => paint(entry.msg.messageId));
on('history-loaded', () => loadReactions());
on('sse:reaction-added', ({ data, fromUserId }) => {
  if (data?.messageId && data.emoji) setReaction(data.messageId, data.emoji, data.userId || fromUserId, true);
});
on('sse:reaction-removed', ({ data, fromUserId }) => {
  if (data?.messageId && data.emoji) setReaction(data.messageId, data.emoji, data.userId || fromUserId, false);
});
