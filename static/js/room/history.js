// History: the newest page on load (and on resync), older pages when the
// reader scrolls to the top or presses "Load older messages", or until a
// search result is loaded.
import { emit, on } from './bus.js';
import { call } from './ctx.js';
import { $ } from './dom.js';
import { showNotice } from './notice.js';
import { prependOlder, reset, scroller } from './messages.js';

const PAGE = 50;
const JUMP_PAGE = 100; // the server's largest page
const MAX_JUMP_PAGES = 100; // a search result at most 10,000 messages back
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

export async function loadOlder(limit = PAGE) {
  if (loading || !hasMore) return;
  loading = true;
  updateOlder();
  try {
    const q = new URLSearchParams({ limit: String(limit), cursor, direction: 'older' });
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

const later = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Loads older pages until the message at history position `target` (a
 * search result's `cursor`) is in the list. Answers false when it lies
 * more than 10,000 messages back, or a page failed.
 */
export async function loadThrough(target) {
  const goal = BigInt(target);
  for (let pages = 0, waits = 0; hasMore && cursor !== null && BigInt(cursor) > goal;) {
    if (loading) {
      if (++waits > 200) return false;
      await later(50);
      continue;
    }
    if (pages++ >= MAX_JUMP_PAGES) return false;
    const before = cursor;
    await loadOlder(JUMP_PAGE);
    if (cursor === before) return false;
  }
  return true;
}

/** Keeps loading while the list is too short to scroll (else "scroll up" can never fire). */
function fillViewport() {
  if (hasMore && !loading && scroller.scrollHeight <= scroller.clientHeight + 20) loadOlder();
}

scroller.addEventListener('scroll', () => { if (scroller.scrollTop < 150) loadOlder(); }, { passive: true });
olderBtn.addEventListener('click', () => loadOlder());

// The server could not replay what we missed: start again from the newest page.
on('sse:resync', () => loadLatest().catch((err) => showNotice(err)));
