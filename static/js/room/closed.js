// A closed room: an admin closed it, live (the `conversation-closed` event
// every stream gets) or before the page loaded. The history stays readable;
// the composer gives way to a banner that says why, and nothing is sent.
import { emit, on } from './bus.js';
import { ctx } from './ctx.js';
import { $ } from './dom.js';
import { enableComposer } from './composer.js';

const banner = $('closed-banner');

function when(iso) {
  const d = new Date(iso || '');
  return Number.isNaN(d.getTime()) ? '' : ` on ${d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' })}`;
}

/** Turns the page read-only; `conversation` is the closed room's metadata. */
export function markClosed(conversation) {
  if (ctx.closed) return;
  ctx.closed = true;
  if (conversation) ctx.conversation = { ...ctx.conversation, ...conversation };
  document.querySelector('main.room').classList.add('closed');
  enableComposer(false);
  $('composer').hidden = true;
  $('typing').textContent = '';
  $('invite').hidden = true;
  banner.textContent = `This conversation was closed${when(ctx.conversation?.closedAt)}. You can still read it, but no new messages can be sent.`;
  emit('closed');
}

on('sse:conversation-closed', ({ data }) => markClosed(data));
