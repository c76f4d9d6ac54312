// Message text as the room shows it: http(s) URLs become links and a small
// markdown subset is honoured (**bold**, *italic* or _italic_, `inline
// code`, ``` code blocks ```). Everything is built from text nodes and a
// fixed set of elements; nothing from a body is ever parsed as HTML.
import { el } from './dom.js';

const MAX_DEPTH = 3; // bold inside italic inside bold is enough
const FENCE = /```(?:[A-Za-z0-9_+-]{0,20}\n)?([\s\S]*?)```/g;
const CODE = /`([^`\n]+)`/g;
// Inline patterns, tried together; the earliest match wins, a URL on a tie.
const INLINE = [
  ['url', /\bhttps?:\/\/[^\s<>"'`]+/gi],
  ['strong', /\*\*(?=\S)([\s\S]*?\S)\*\*/g],
  ['em', /(?<![\w*])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?![\w*])/g],
  ['em', /(?<![\w_])_(?=[^\s_])([^_\n]*?[^\s_])_(?![\w_])/g],
];

/** Drops what usually ends a sentence rather than a URL (and unmatched closing brackets). */
function trimUrl(url) {
  let end = url.length;
  for (;;) {
    const last = url[end - 1];
    if (/[.,;:!?'"]/.test(last)) { end--; continue; }
    if (last === ')' && (url.slice(0, end).match(/\(/g) || []).length < (url.slice(0, end).match(/\)/g) || []).length) { end--; continue; }
    break;
  }
  return url.slice(0, end);
}

function link(url) {
  let href = null;
  try {
    const u = new URL(url);
    if (u.protocol === 'http:' || u.protocol === 'https:') href = u.href;
  } catch { /* not a URL after all: stays text */ }
  if (!href) return document.createTextNode(url);
  const a = el('a', 'link', url);
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  return a;
}

/** The earliest inline match at or after `from`: {kind, index, length, inner}. */
function nextMatch(text, from) {
  let best = null;
  for (const [kind, re] of INLINE) {
    re.lastIndex = from;
    const m = re.exec(text);
    if (m && (!best || m.index < best.index)) {
      const raw = kind === 'url' ? trimUrl(m[0]) : m[0];
      best = { kind, index: m.index, length: raw.length, inner: kind === 'url' ? raw : m[1] };
    }
  }
  return best;
}

/** Text without code: links, bold and italic. */
function inline(text, depth, out) {
  let at = 0;
  while (at < text.length) {
    const m = depth < MAX_DEPTH ? nextMatch(text, at) : null;
    if (!m) break;
    if (m.index > at) out.push(document.createTextNode(text.slice(at, m.index)));
    if (m.kind === 'url') out.push(link(m.inner));
    else {
      const node = el(m.kind);
      const inner = [];
      inline(m.inner, depth + 1, inner);
      node.append(...inner);
      out.push(node);
    }
    at = m.index + m.length;
  }
  if (at < text.length) out.push(document.createTextNode(text.slice(at)));
}

/** A stretch outside code blocks: inline code spans, the rest inline. */
function spans(text, out) {
  let at = 0;
  for (const m of text.matchAll(CODE)) {
    inline(text.slice(at, m.index), 0, out);
    out.push(el('code', '', m[1]));
    at = m.index + m[0].length;
  }
  inline(text.slice(at), 0, out);
}

/** The nodes that show `text` (a message body). */
export function formatBody(text) {
  const out = [];
  let at = 0;
  for (const m of String(text ?? '').matchAll(FENCE)) {
    spans(text.slice(at, m.index), out);
    const pre = el('pre', 'code-block');
    pre.append(el('code', '', m[1].replace(/\n$/, '')));
    out.push(pre);
    at = m.index + m[0].length;
  }
  spans(String(text ?? '').slice(at), out);
  return out;
}
