// The room inside an integrator's iframe talks to the embedding page over
// postMessage, only with the page that frames it: to its origin alone, and
// heard only from its window and origin.
//   To the page:   {source:"chats3", type:"ready"|"left"|"session-ended"|"unread", conversationId, count?}
//   From the page: {type:"leave"} (emitted as `parent:leave`),
//                  {type:"visibility", visible} (whether the page shows the chat;
//                  emitted as `host-visibility`)
// While the page hides the chat (a collapsed launcher) or the tab is hidden,
// messages from others count as unread and the count goes to the page.
import { emit, on } from './bus.js';
import { ctx, isMine, isSystem } from './ctx.js';

const framed = window.parent !== window;
/** At most this many message ids are remembered so a message is counted once. */
const MAX_COUNTED = 1000;

let hostShows = true; // until the page says otherwise (an iframe without embed.js shows the chat)
let unread = 0;
const counted = new Set();

/** The embedding page's origin, so our messages reach only it. */
function parentOrigin() {
  try {
    if (location.ancestorOrigins?.length) return location.ancestorOrigins[0];
    if (document.referrer) return new URL(document.referrer).origin;
  } catch { /* fall through */ }
  return null;
}

/** Tells the embedding page what happened ({source:"chats3", type, ...}). */
export function tellParent(type, extra = {}) {
  const origin = parentOrigin();
  if (framed && origin) window.parent.postMessage({ source: 'chats3', type, conversationId: ctx.conversationId, ...extra }, origin);
}

/** Whether the person can see the chat now (read receipts wait for it too). */
export const seen = () => hostShows && !document.hidden;

function setUnread(n) {
  if (n === unread) return;
  unread = n;
  tellParent('unread', { count: unread });
}

function markSeen() {
  if (!seen()) return;
  counted.clear();
  setUnread(0);
}

if (framed) {
  window.addEventListener('message', (e) => {
    if (e.source !== window.parent) return;
    const expected = parentOrigin();
    if (!expected || e.origin !== expected) return;
    const d = e.data;
    if (!d || typeof d !== 'object') return;
    if (d.type === 'leave') emit('parent:leave');
    if (d.type === 'visibility' && typeof d.visible === 'boolean') {
      hostShows = d.visible;
      markSeen();
      emit('host-visibility', hostShows);
    }
  });
  document.addEventListener('visibilitychange', markSeen);
  on('sse:new-message', ({ data: msg }) => {
    if (seen() || !msg?.messageId || isMine(msg) || isSystem(msg) || counted.has(msg.messageId)) return;
    if (counted.size >= MAX_COUNTED) counted.clear();
    counted.add(msg.messageId);
    setUnread(unread + 1);
  });
}
