// Who is here and who is typing. The list starts from the stream's
// room-state; a `peer-join` adds someone (each page announces itself that way
// when its stream opens), a `peer-leave` removes them; presence marks them.
import { on } from './bus.js';
import { ctx, call, isSystem, signalQuietly } from './ctx.js';
import { $, el } from './dom.js';

const peopleList = $('participants');
const countEl = $('participant-count');
const typingEl = $('typing');

const people = new Map();   // userId -> {userId, displayName, isMe}
const presence = new Map(); // userId -> online|away|offline

export const nameOf = (userId) => people.get(userId)?.displayName || 'Someone';

function render() {
  const sorted = [...people.values()].sort((a, b) => (b.isMe - a.isMe) || a.displayName.localeCompare(b.displayName));
  peopleList.replaceChildren(...sorted.map((p) => {
    const status = presence.get(p.userId) || 'online';
    const li = el('li', `${p.isMe ? 'me' : ''} presence-${status}`.trim());
    li.dataset.userId = p.userId;
    li.append(el('span', 'name', p.isMe ? `${p.displayName} (you)` : p.displayName));
    if (status !== 'online') li.append(el('span', 'presence', ` (${status})`));
    return li;
  }));
  countEl.textContent = `(${sorted.length})`;
}

/** Records a person; false when nothing changed. */
function setPerson(userId, displayName, isMe = false) {
  if (!userId || !displayName) return false;
  const name = String(displayName).slice(0, 50);
  if (people.get(userId)?.displayName === name) return false;
  people.set(userId, { userId, displayName: name, isMe: isMe || userId === ctx.me?.userId });
  return true;
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
/** GET /api/v1/presence answers {userId: {status, lastSeen}}. */
function readPresence(details) {
  for (const [userId, entry] of Object.entries(details)) presence.set(userId, entry.status);
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
  if (!m || isSystem(m)) return; // the service's join and leave notices come with peer-join/peer-leave
  setPerson(m.senderUserId, m.senderDisplayName);
  setTyping(m.senderUserId, '', false);
  render();
});
on('sse:peer-join', (ev) => {
  if (setPerson(ev.fromUserId, ev.data?.displayName)) render();
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
    if (!people.has(ev.fromUserId) && setPerson(ev.fromUserId, ev.data?.displayName)) render();
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
  signalQuietly('peer-join', { kind: 'room', displayName: ctx.me.displayName });
  call('/api/v1/presence').then(({ details }) => { readPresence(details); render(); }).catch(() => {});
  if (!document.hidden) postPresence('online');
});
