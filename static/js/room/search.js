// Search within the loaded messages, with next/previous and highlighting.
// Highlights are built from text nodes and <mark> elements, never from HTML.
import { on } from './bus.js';
import { $, el } from './dom.js';
import { entries, get } from './messages.js';

const form = $('search');
const input = $('search-input');
const prevBtn = $('search-prev');
const nextBtn = $('search-next');
const statusEl = $('search-status');

let query = '';
let hits = [];     // [{id, start}] in display order
let current = -1;
let timer = 0;

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
  const mine = hits.filter((h) => h.id === entry.msg.messageId);
  entry.el.classList.toggle('search-hit', mine.length > 0);
  const isCurrent = current >= 0 && hits[current]?.id === entry.msg.messageId;
  entry.el.classList.toggle('search-current', isCurrent);
  if (isCurrent) entry.el.setAttribute('aria-current', 'true'); else entry.el.removeAttribute('aria-current');
  if (!mine.length) {
    if (body.childElementCount) body.textContent = text;
    return;
  }
  const parts = [];
  let at = 0;
  for (const h of mine) {
    parts.push(document.createTextNode(text.slice(at, h.start)));
    const mark = el('mark', h === hits[current] ? 'current' : '', text.slice(h.start, h.start + query.length));
    parts.push(mark);
    at = h.start + query.length;
  }
  parts.push(document.createTextNode(text.slice(at)));
  body.replaceChildren(...parts);
}

const touched = (list) => new Set(list.map((h) => h.id));

function showStatus() {
  statusEl.textContent = !query ? '' : hits.length ? `${current + 1} of ${hits.length}` : 'No matches';
  prevBtn.disabled = nextBtn.disabled = hits.length === 0;
}

function focusCurrent() {
  const h = hits[current];
  h && get(h.id)?.el.scrollIntoView({ block: 'center', behavior: 'smooth' });
}

/** Recomputes the matches, keeping the current one when it still matches. */
function run({ keep = false } = {}) {
  const before = touched(hits);
  const was = hits[current];
  query = input.value.trim().toLowerCase();
  hits = [];
  if (query) {
    for (const e of entries()) {
      if (e.msg.deleted) continue;
      for (const start of occurrences(e.msg.body ?? '', query)) hits.push({ id: e.msg.messageId, start });
    }
  }
  const same = keep && was ? hits.findIndex((h) => h.id === was.id && h.start === was.start) : -1;
  current = same >= 0 ? same : hits.length - 1; // start from the newest match, nearest the reader
  for (const id of new Set([...before, ...touched(hits)])) paint(get(id));
  showStatus();
  if (!keep) focusCurrent();
}

function step(delta) {
  if (!hits.length) return;
  const old = hits[current];
  current = (current + delta + hits.length) % hits.length;
  if (old) paint(get(old.id));
  paint(get(hits[current].id));
  showStatus();
  focusCurrent();
}

form.addEventListener('submit', (e) => e.preventDefault());
input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(run, 150); });
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter') { e.preventDefault(); clearTimeout(timer); if (query !== input.value.trim().toLowerCase()) run(); else step(e.shiftKey ? -1 : 1); }
  if (e.key === 'Escape' && input.value) { e.preventDefault(); input.value = ''; run(); }
});
nextBtn.addEventListener('click', () => step(1));
prevBtn.addEventListener('click', () => step(-1));

// New, edited or re-rendered messages: refresh the matches without jumping around.
let refresh = 0;
on('message-changed', () => {
  if (!query) return;
  clearTimeout(refresh);
  refresh = setTimeout(() => run({ keep: true }), 100);
});
// A plain re-render (same text) only needs its marks back.
on('message-rendered', (entry) => { if (query) paint(entry); });
showStatus();
