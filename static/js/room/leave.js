// Leaving (button or, in an iframe, the parent page's request, see
// embed-bridge.js) and the end of a session.
import { storage } from '../storage.js';
import { emit, on } from './bus.js';
import { ctx, call, joinUrl } from './ctx.js';
import { $, el } from './dom.js';
import { confirmAction } from '../confirm.js';
import { showNotice } from './notice.js';
import { connect, setConn, stopStream } from './stream.js';
import { enableComposer } from './composer.js';
import { tellParent } from './embed-bridge.js';

const leaveBtn = $('leave');
const leftState = $('left-state');
const framed = window.parent !== window;

/** Stops everything live; the page stays readable. */
function stop() {
  ctx.stopped = true;
  stopStream();
  emit('stopped');
  setConn('offline');
  enableComposer(false);
  document.querySelector('main.room').classList.add('ended'); // read-only from now on
  leaveBtn.disabled = true;
}

/** Ends a session the server no longer knows. What is still unsent stays
 *  in this tab's outbox and goes out once the user has joined again. */
export function endSession(text) {
  if (ctx.stopped && !leftState.hidden) return;
  stop();
  storage.remove(ctx.storeKey);
  const link = Object.assign(el('a', '', 'Join again'), { href: joinUrl() });
  showNotice(text);
  if (!ctx.embed) $('room-notice').append(' ', link);
  tellParent('session-ended');
}

function showLeft() {
  leftState.hidden = false;
  $('composer').hidden = true;
  $('typing').textContent = '';
  $('left-text').textContent = 'You left the conversation.';
  leftState.focus();
}

/** Leaves the room (asked by the parent page, or confirmed by the user). */
export async function leave() {
  if (ctx.stopped) return;
  leaveBtn.disabled = true;
  emit('leaving');
  ctx.stopped = true; // the server now ends our stream: not an error to recover from
  try {
    await call('/api/v1/leave', { method: 'POST' });
  } catch (err) {
    if (err.status !== 401) {
      ctx.stopped = false;
      leaveBtn.disabled = false;
      if (!ctx.live) connect();
      showNotice(err);
      return;
    }
  }
  stop();
  storage.remove(ctx.storeKey);
  emit('left');
  tellParent('left');
  if (ctx.embed || framed) showLeft();
  else location.assign(joinUrl());
}

async function confirmLeave() {
  const ok = await confirmAction({
    title: 'Leave this conversation?',
    text: 'You stop receiving its messages; you can join again with the join code.',
    confirmLabel: 'Leave',
  });
  if (ok) leave();
}

/** Wires the Leave button (hidden when not allowed) and the parent's leave request. */
export function setupLeave(showButton) {
  leaveBtn.hidden = !showButton;
  leaveBtn.addEventListener('click', confirmLeave);
  on('parent:leave', leave);
}

on('expired', () => endSession('Your session has expired.'));
// Back button after leaving: the browser may restore this page from its cache,
// frozen as it was; say why nothing is live.
window.addEventListener('pageshow', (e) => {
  if (e.persisted && ctx.stopped && leftState.hidden) endSession('You left this conversation.');
});
