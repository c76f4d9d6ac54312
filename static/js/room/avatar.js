// A sender's avatar: the picture from their ticket or join (an http(s)
// `avatarUrl`), else their initials on a colour derived from their id.
// Decorative: the name beside it is what assistive technology reads.
import { el } from './dom.js';

// Each with a contrast of at least 4.5:1 against white text.
const COLOURS = ['#1f55d1', '#8031c4', '#a4321f', '#1a6f33', '#805300', '#0b6470', '#b0246a', '#4a5560'];

function hash(text) {
  let h = 0;
  for (const ch of String(text)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h;
}

/** Up to two letters: the first of the first and last words. */
export function initials(name) {
  const words = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const first = [...(words[0] || '?')][0];
  const last = words.length > 1 ? [...words[words.length - 1]][0] : '';
  return (first + last).toUpperCase();
}

function safeUrl(url) {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch { return null; }
}

/** The avatar element for a sender. */
export function avatar(userId, name, url) {
  const box = el('span', 'avatar');
  box.setAttribute('aria-hidden', 'true');
  const letters = el('span', 'initials', initials(name));
  box.style.setProperty('--avatar-bg', COLOURS[hash(userId || name) % COLOURS.length]);
  box.append(letters);
  const src = url && safeUrl(url);
  if (src) {
    const img = el('img');
    img.alt = '';
    img.loading = 'lazy';
    img.decoding = 'async';
    img.referrerPolicy = 'no-referrer';
    img.addEventListener('load', () => box.classList.add('has-picture'));
    img.addEventListener('error', () => img.remove());
    img.src = src;
    box.append(img);
  }
  return box;
}
