// Read receipts: we report the newest message from others that is on screen
// while the page is visible; our own last message shows "Seen by N". The
// newest history page carries every reader's mark ({userId: messageId}), so
// "Seen by" survives a reload; `message-read` events move marks on live.
import { on } from './bus.js';
import { ctx, call, isMine, isSystem } from './ctx.js';
import { entries, list, scroller } from './messages.js';
import { nameOf } from './people.js';
import { seen } from './embed-bridge.js';

const lastRead = new Map(); // userId -> messageId they last read
let sentFor = '';
let timer = 0;

function isVisible(li) {
  const a = li.getBoundingClientRect();
  const b = scroller.getBoundingClientRect();
  return a.bottom > b.top && a.top < b.bottom;
}

/** The newest message from someone else that is on screen. */
function newestVisibleFromOthers() {
  const all = entries();
  for (let i = all.length - 1; i >= 0; i--) {
    const { msg, status, el } = all[i];
    if (status || isMine(msg) || isSystem(msg)) continue;
    return isVisible(el) ? msg.messageId : null;
  }
  return null;
}

function report() {
  if (!ctx.me || !ctx.live || ctx.stopped || !seen()) return; // not while hidden, nor in a collapsed embed
  const id = newestVisibleFromOthers();
  if (!id || id === sentFor) return;
  sentFor = id;
  call(`/api/v1/messages/${encodeURIComponent(id)}/read`, { method: 'POST' }).catch(() => { sentFor = ''; });
}
const soon = () => { clearTimeout(timer); timer = setTimeout(report, 400); };

function paint() {
  const all = entries();
  const index = new Map(all.map((e, i) => [e.msg.messageId, i]));
  let mine = -1;
  for (let i = all.length - 1; i >= 0 && mine < 0; i--) if (isMine(all[i].msg) && !all[i].status) mine = i;
  for (const r of list.querySelectorAll('.receipt:not(:empty)')) r.textContent = '';
  if (mine < 0) return;
  // Reading a later message means having seen ours too.
  const seers = [...lastRead].filter(([userId, id]) => userId !== ctx.me?.userId && (index.get(id) ?? -1) >= mine)
    .map(([userId]) => nameOf(userId));
  const box = all[mine].el.querySelector('.receipt');
  if (!box || !seers.length) return;
  box.textContent = `Seen by ${seers.length}`;
  box.title = seers.join(', ');
}

on('sse:message-read', ({ data, fromUserId }) => {
  const userId = data?.userId || fromUserId;
  if (!userId || !data?.messageId) return;
  lastRead.set(userId, data.messageId);
  paint();
});
on('readers', (readers) => {
  for (const [userId, messageId] of Object.entries(readers)) lastRead.set(userId, messageId);
  if (ctx.me && readers[ctx.me.userId]) sentFor = readers[ctx.me.userId];
  paint();
});
on('message-changed', () => { paint(); soon(); });
on('live', soon);
scroller.addEventListener('scroll', soon, { passive: true });
document.addEventListener('visibilitychange', soon);
on('host-visibility', soon);
window.addEventListener('focus', soon);
