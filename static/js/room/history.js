// History: the newest page on load (and on resync), older pages when the
// reader scrolls to the top or presses "Load older messages".
import { emit, on } from './bus.js';
import { call } from './ctx.js';
import { $ } from './dom.js';
import { showNotice } from './notice.js';
import { prependOlder, reset, scroller } from './messages.js';

const PAGE = 50;
const olderBtn = $('load-older');
const statusEl = $('history-status');
let cursor = null;
let hasMore = false;
let loading = false;

function updateOlder() {
  olderBtn.hidden = !hasMore;
  olderBtn.disabled = loading;
  statusEl.textContent = loading ? 'Loading older messages…' : hasMore ? '' : 'Start of the conversation';
}

/** Reads a page answer {messages, nextCursor, hasMore}. */
function takePage({ messages, nextCursor, hasMore: more }) {
  cursor = nextCursor ?? null;
  hasMore = !!more && cursor !== null;
  return messages;
}

export async function loadLatest() {
  const { details } = await call(`/api/v1/messages?limit=${PAGE}`);
  reset(takePage(details));
  updateOlder();
  emit('readers', details.readers || {});
  emit('history-loaded');
  fillViewport();
}

export async function loadOlder() {
  if (loading || !hasMore) return;
  loading = true;
  updateOlder();
  try {
    const q = new URLSearchParams({ limit: String(PAGE), cursor, direction: 'older' });
    const { details } = await call(`/api/v1/messages?${q}`);
    prependOlder(takePage(details));
    emit('history-loaded');
  } catch (err) {
    showNotice(err, { transient: true });
  } finally {
    loading = false;
    updateOlder();
  }
  fillViewport();
}

/** Keeps loading while the list is too short to scroll (else "scroll up" can never fire). */
function fillViewport() {
  if (hasMore && !loading && scroller.scrollHeight <= scroller.clientHeight + 20) loadOlder();
}

scroller.addEventListener('scroll', () => { if (scroller.scrollTop < 150) loadOlder(); }, { passive: true });
olderBtn.addEventListener('click', () => loadOlder());

// The server could not replay what we missed: start again from the newest page.
on('sse:resync', () => loadLatest().catch((err) => showNotice(err)));
