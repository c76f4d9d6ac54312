// Who is here (room-state, joins, leaves, presence) and who is typing.
import { $, ctx, call, el, on, sameName, isSystem } from './ctx.js';

const peopleList = $('participants');
const countEl = $('participant-count');
const typingEl = $('typing');

// userId (or "name:<lower>" while only the join message's name is known) -> {userId, displayName, isMe}
const people = new Map();
const presence = new Map(); // userId -> online|away|offline

/** Records a name seen on an event (typing, call join) so lists and tiles can show it. */
export function learnName(userId, displayName) {
  if (!userId || !displayName || userId === ctx.me?.userId || people.get(userId)?.displayName === displayName) return;
  setPerson(userId, String(displayName).slice(0, 50));
  render();
}

/** Everyone else in the room, for calls. */
export const others = () => [...people.values()].filter((p) => !p.isMe && p.userId);
export const nameOf = (userId) => people.get(userId)?.displayName || 'Someone';

function render() {
  const sorted = [...people.values()].sort((a, b) => (b.isMe - a.isMe) || a.displayName.localeCompare(b.displayName));
  peopleList.replaceChildren(...sorted.map((p) => {
    const status = presence.get(p.userId) || 'online';
    const li = el('li', `${p.isMe ? 'me' : ''} presence-${status}`.trim());
    if (p.userId) li.dataset.userId = p.userId;
    li.append(el('span', 'name', p.isMe ? `${p.displayName} (you)` : p.displayName));
    if (status !== 'online') li.append(el('span', 'presence', ` (${status})`));
    return li;
  }));
  countEl.textContent = `(${sorted.length})`;
}

function setPerson(userId, displayName, isMe = false) {
  if (!userId || userId === 'system' || !displayName) return;
  for (const [k, p] of people) if (k.startsWith('name:') && sameName(p.displayName, displayName)) people.delete(k);
  people.set(userId, { userId, displayName, isMe: isMe || userId === ctx.me?.userId });
}

/** Live join/leave system messages name the person (their id comes with their first event). */
function applySystemMessage(body) {
  const joined = /^(.+) joined the conversation$/.exec(body || '');
  const left = /^(.+) left the conversation$/.exec(body || '');
  if (joined && ![...people.values()].some((p) => sameName(p.displayName, joined[1]))) {
    people.set(`name:${joined[1].toLowerCase()}`, { userId: '', displayName: joined[1], isMe: false });
  }
  if (left) for (const [k, p] of people) if (!p.isMe && sameName(p.displayName, left[1])) people.delete(k);
}

// ---- typing ----------------------------------------------------------------------------
const typers = new Map(); // userId -> {name, timer}
function setTyping(userId, name, typing) {
  const t = typers.get(userId);
  if (t) clearTimeout(t.timer);
  // A lost typing-stop must not leave the indicator on forever.
  if (typing) typers.set(userId, { name, timer: setTimeout(() => setTyping(userId, name, false), 6000) });
  else typers.delete(userId);
  const names = [...typers.values()].map((x) => x.name);
  typingEl.textContent = names.length === 0 ? ''
    : names.length === 1 ? `${names[0]} is typing…`
      : names.length === 2 ? `${names[0]} and ${names[1]} are typing…`
        : 'Several people are typing…';
}

// ---- presence ------------------------------------------------------------------------------
function readPresence(details) {
  if (!details || typeof details !== 'object') return;
  const rows = Array.isArray(details) ? details : Object.entries(details).map(([userId, v]) => ({ userId, ...(typeof v === 'string' ? { status: v } : v) }));
  for (const r of rows) if (r?.userId && r.status) presence.set(r.userId, r.status);
}

function postPresence(status) {
  if (ctx.me && ctx.live && !ctx.stopped) call('/api/v1/presence', { method: 'POST', body: { status } }).catch(() => {});
}
document.addEventListener('visibilitychange', () => postPresence(document.hidden ? 'away' : 'online'));

// ---- events ---------------------------------------------------------------------------------
on('sse:room-state', (ev) => {
  people.clear();
  for (const p of ev.data?.participants || []) setPerson(p.userId, p.displayName, p.isMe);
  render();
});
on('sse:new-message', ({ data: m }) => {
  if (!m) return;
  if (isSystem(m)) applySystemMessage(m.body);
  else { setPerson(m.senderUserId, m.senderDisplayName); setTyping(m.senderUserId, '', false); }
  render();
});
on('sse:peer-leave', (ev) => {
  people.delete(ev.fromUserId);
  presence.delete(ev.fromUserId);
  setTyping(ev.fromUserId, '', false);
  render();
});
for (const type of ['typing-start', 'typing-stop']) {
  on(`sse:${type}`, (ev) => {
    if (!ev.fromUserId || ev.fromUserId === ctx.me?.userId) return;
    if (!people.has(ev.fromUserId) && ev.data?.displayName) learnName(ev.fromUserId, ev.data.displayName);
    const name = people.get(ev.fromUserId)?.displayName || 'Someone';
    setTyping(ev.fromUserId, name, type === 'typing-start');
  });
}
on('sse:presence-update', (ev) => {
  const userId = ev.data?.userId || ev.fromUserId;
  if (!userId || !ev.data?.status) return;
  presence.set(userId, ev.data.status);
  render();
});
on('live', () => {
  call('/api/v1/presence').then(({ details }) => { readPresence(details); render(); }).catch(() => {});
  if (!document.hidden) postPresence('online');
});
