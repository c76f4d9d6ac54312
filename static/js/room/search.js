// Search across the whole history (GET /api/v1/messages/search), newest
// first, with next/previous: a result not loaded yet is loaded with the
// messages after it, then scrolled to. Highlights are built from text nodes
// and <mark> elements, never from HTML.
import { on } from './bus.js';
import { call } from './ctx.js';
import { $, el } from './dom.js';
import { loadThrough } from './history.js';
import { get } from './messages.js';
import { showNotice } from './notice.js';

const form = $('search');
const input = $('search-input');
const prevBtn = $('search-prev');
const nextBtn = $('search-next');
const statusEl = $('search-status');

const PAGE = 20;
const MAX_QUERY = 100; // characters, as the server allows
const MAX_EMPTY_PAGES = 10; // pages with no result read in a row before asking the reader

let query = '';         // lowercased, as searched
let results = [];       // [{id, cursor}] newest first
let nextCursor = null;  // where the server's next page starts
let hasMore = false;
let current = -1;       // index into results
let busy = false;
let generation = 0;     // a newer search makes older answers stale
let timer = 0;

const isHit = (id) => results.some((r) => r.id === id);

function occurrences(text, q) {
  const hay = text.toLowerCase();
  const out = [];
  for (let i = hay.indexOf(q); i >= 0; i = hay.indexOf(q, i + q.length)) out.push(i);
  return out;
}

/** Rebuilds one message body with its matches marked (or plain again). */
function paint(entry) {
  const body = entry?.el.querySelector('.body');
  if (!body || entry.msg.deleted) return;
  const text = entry.msg.body ?? '';
  const hit = query && isHit(entry.msg.messageId);
  const isCurrent = hit && results[current]?.id === entry.msg.messageId;
  entry.el.classList.toggle('search-hit', !!hit);
  entry.el.classList.toggle('search-current', !!isCurrent);
  if (isCurrent) entry.el.setAttribute('aria-current', 'true'); else entry.el.removeAttribute('aria-current');
  const starts = hit ? occurrences(text, query) : [];
  if (!starts.length) {
    if (body.childElementCount) body.textContent = text;
    return;
  }
  const parts = [];
  let at = 0;
  for (const start of starts) {
    parts.push(document.createTextNode(text.slice(at, start)));
    parts.push(el('mark', isCurrent ? 'current' : '', text.slice(start, start + query.length)));
    at = start + query.length;
  }
  parts.push(document.createTextNode(text.slice(at)));
  body.replaceChildren(...parts);
}

function showStatus(text) {
  const count = `${results.length}${hasMore ? '+' : ''}`;
  const none = hasMore ? 'No matches yet: Enter searches older messages' : 'No matches';
  statusEl.textContent = text ?? (!query ? '' : results.length ? `${current + 1} of ${count}` : none);
  prevBtn.disabled = busy || (!results.length && !hasMore);
  nextBtn.disabled = busy || !results.length;
}

/** Reads result pages until one more result arrives or the history ends. */
async function fetchMore(mine) {
  for (let empty = 0; hasMore && empty < MAX_EMPTY_PAGES; empty++) {
    const q = new URLSearchParams({ q: query, limit: String(PAGE) });
    if (nextCursor !== null) q.set('cursor', nextCursor);
    const { details } = await call(`/api/v1/messages/search?${q}`);
    if (mine !== generation) return false;
    nextCursor = details.nextCursor ?? null;
    hasMore = !!details.hasMore && nextCursor !== null;
    const fresh = details.results.filter((r) => !isHit(r.message.messageId));
    results.push(...fresh.map((r) => ({ id: r.message.messageId, cursor: r.cursor })));
    if (fresh.length) return true;
    showStatus('Searching older messages…');
  }
  return false;
}

/** Shows the current result: loads it when it is older than the list, scrolls to it. */
async function focusCurrent(mine) {
  const r = results[current];
  if (!r) return;
  if (!get(r.id)) {
    showStatus('Loading the message…');
    const reached = await loadThrough(r.cursor);
    if (mine !== generation) return;
    if (!reached || !get(r.id)) { showStatus('That message is too far back to show here'); return; }
  }
  for (const x of results) paint(get(x.id));
  showStatus();
  get(r.id)?.el.scrollIntoView({ block: 'center', behavior: 'smooth' });
}

/** Runs the action of the newest search only, with the buttons off meanwhile. */
async function guarded(mine, action) {
  busy = true;
  showStatus();
  try {
    await action();
  } catch (err) {
    if (mine === generation) showNotice(err, { transient: true });
  } finally {
    if (mine === generation) { busy = false; showStatus(); }
  }
}

/** Starts a new search for what the input holds. */
function run() {
  const mine = ++generation;
  const before = results;
  query = input.value.trim().slice(0, MAX_QUERY).toLowerCase();
  results = [];
  nextCursor = null;
  hasMore = !!query;
  current = -1;
  for (const r of before) paint(get(r.id));
  busy = false;
  showStatus();
  if (!query) return;
  guarded(mine, async () => {
    showStatus('Searching…');
    await fetchMore(mine);
    if (mine !== generation || !results.length) return;
    current = 0; // the newest match, nearest the reader
    await focusCurrent(mine);
  });
}

/** Moves to an older (+1) or newer (-1) result, reading the next page when needed. */
function step(delta) {
  if (busy || (!results.length && !hasMore)) return;
  const mine = generation;
  guarded(mine, async () => {
    if (delta > 0 && current === results.length - 1 && hasMore) await fetchMore(mine);
    if (mine !== generation || !results.length) return;
    current = (current + delta + results.length) % results.length;
    await focusCurrent(mine);
  });
}

const typed = () => input.value.trim().slice(0, MAX_QUERY).toLowerCase();

form.addEventListener('submit', (e) => e.preventDefault());
input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(run, 300); });
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter') {
    e.preventDefault();
    clearTimeout(timer);
    if (query !== typed()) run(); else step(e.shiftKey ? -1 : 1);
  }
  if (e.key === 'Escape' && input.value) { e.preventDefault(); input.value = ''; run(); }
});
prevBtn.addEventListener('click', () => step(1));
nextBtn.addEventListener('click', () => step(-1));

// A rendered message that is a result gets its marks (again).
on('message-rendered', (entry) => { if (query) paint(entry); });
showStatus();
