// How a file message shows its attachment: an inline preview for images (the
// server's thumbnail where its metadata names one, else the original) that
// opens the original in a lightbox, and a file card (type, name, size) that
// downloads everything else. Downloads need the session, so we ask the API
// for the attachment (sent with x-session-id): its metadata and a signed URL.
import { call } from './ctx.js';
import { el } from './dom.js';
import { openLightbox } from './lightbox.js';

const SIGNED_TTL_MS = 12 * 60 * 1000; // signed URLs live 15 min; refresh a bit before
const IMAGE_TYPES = /^image\/(jpeg|png|gif|webp)$/i;
const IMAGE_EXT = /\.(jpe?g|png|gif|webp)$/i;

const signed = new Map();     // "attachmentId variant" -> {at, promise}
const localFiles = new Map(); // attachmentId -> blob: URL of a file we just uploaded

/** Lets our own fresh uploads preview instantly from the local file. */
export function rememberLocalFile(attachmentId, file) {
  try { localFiles.set(attachmentId, URL.createObjectURL(file)); } catch { /* no blob URLs */ }
}

export function attachmentIdOf(msg) {
  if (msg.attachmentId) return String(msg.attachmentId);
  const m = /\/api\/v1\/attachments\/([^/?#]+)/.exec(msg.url || '');
  return m ? decodeURIComponent(m[1]) : '';
}

/** Only same-origin paths and http(s) URLs may become links. */
function safeHref(url) {
  if (!url) return null;
  try {
    const u = new URL(url, location.origin);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch { return null; }
}

/** An attachment's answer {metadata, signedUrl} for its original or
 *  thumbnail, cached while the signed URL is fresh. */
function lookup(id, { fresh = false, variant = 'original' } = {}) {
  const key = `${id} ${variant}`;
  const hit = signed.get(key);
  if (hit && !fresh && Date.now() - hit.at < SIGNED_TTL_MS) return hit.promise;
  const query = variant === 'original' ? '' : `?variant=${variant}`;
  const promise = call(`/api/v1/attachments/${encodeURIComponent(id)}${query}`).then(({ details }) => details);
  signed.set(key, { at: Date.now(), promise });
  promise.catch(() => signed.delete(key));
  return promise;
}

/** The signed URL of an attachment's original or thumbnail (null when unusable). */
const resolve = (id, opts) => lookup(id, opts).then((details) => safeHref(details?.signedUrl));

/** What an image preview shows: its thumbnail when the metadata names one,
 *  else the original (an upload stored before thumbnails, or by another service). */
const previewUrl = (id) => lookup(id).then((details) => (details?.metadata?.variants?.thumbnail
  ? resolve(id, { variant: 'thumbnail' }).catch(() => safeHref(details.signedUrl))
  : safeHref(details?.signedUrl)));

const isImage = (msg) => IMAGE_TYPES.test(msg.mimetype || '') || (!msg.mimetype && IMAGE_EXT.test(msg.filename || ''));

/** Opens the attachment with a fresh signed URL (the old one may have expired). */
function openFresh(event, id, link) {
  const hit = signed.get(`${id} original`);
  if (hit && Date.now() - hit.at < SIGNED_TTL_MS && link.dataset.signed === '1') return; // href is fresh
  event.preventDefault();
  resolve(id, { fresh: true }).then((url) => {
    if (!url) throw new Error('no url');
    link.href = url;
    link.dataset.signed = '1';
    // Still within the click's user activation, so this is not a blocked popup.
    window.open(url, '_blank', 'noopener');
  }).catch(() => { link.classList.add('unavailable'); });
}

/** "2.4 MB", "512 KB", "17 bytes". */
export function humanSize(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return '';
  if (bytes < 1000) return `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}`;
  const units = ['KB', 'MB', 'GB'];
  let n = bytes;
  let i = -1;
  do { n /= 1000; i++; } while (n >= 1000 && i < units.length - 1);
  return `${n < 10 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

/** A short type label for the card's icon: the extension, else the MIME family. */
function typeLabel(msg) {
  const ext = /\.([A-Za-z0-9]{1,5})$/.exec(msg.filename || '');
  if (ext) return ext[1].toUpperCase();
  const family = (msg.mimetype || '').split('/')[1];
  return family ? family.slice(0, 4).toUpperCase() : 'FILE';
}

function iconKind(msg) {
  const type = msg.mimetype || '';
  if (type === 'application/pdf') return 'pdf';
  if (type.startsWith('image/')) return 'image';
  if (type.startsWith('text/') || /json|xml|csv/.test(type)) return 'text';
  if (/zip|tar|gzip|compressed/.test(type)) return 'archive';
  if (type.startsWith('audio/')) return 'audio';
  if (type.startsWith('video/')) return 'video';
  return 'other';
}

function fileCard(msg, id, label) {
  const href = safeHref(msg.url);
  const card = el(href || id ? 'a' : 'span', 'attachment file-card');
  const icon = el('span', `file-icon ${iconKind(msg)}`, typeLabel(msg));
  icon.setAttribute('aria-hidden', 'true');
  const text = el('span', 'file-text');
  const name = el('span', 'file-name', label);
  const size = el('span', 'file-size', '');
  text.append(name, size);
  card.append(icon, text);
  if (card.tagName === 'A') {
    card.href = href || '#';
    card.target = '_blank';
    card.rel = 'noopener noreferrer';
    card.setAttribute('aria-label', `Download ${label}`);
    if (id) card.addEventListener('click', (e) => openFresh(e, id, card));
  }
  if (id) {
    lookup(id).then((details) => {
      const bytes = details?.metadata?.sizeBytes;
      size.textContent = humanSize(bytes);
      if (size.textContent) card.setAttribute('aria-label', `Download ${label}, ${size.textContent}`);
    }).catch(() => {});
  }
  return card;
}

function imagePreview(msg, id, label) {
  const figure = el('figure', 'attachment image');
  const link = el('a', 'preview');
  link.href = safeHref(msg.url) || '#';
  link.target = '_blank';
  link.rel = 'noopener noreferrer';
  link.setAttribute('aria-label', `View image ${label}`);
  link.setAttribute('aria-haspopup', 'dialog');
  const img = el('img');
  img.alt = label;
  img.decoding = 'async';
  link.append(img);
  const caption = el('figcaption', '', label);
  figure.append(link, caption);
  img.addEventListener('load', () => {
    figure.classList.add('loaded');
    figure.dispatchEvent(new CustomEvent('preview-loaded', { bubbles: true, detail: { height: img.offsetHeight } }));
  });
  img.addEventListener('error', () => figure.classList.add('broken'));
  const local = localFiles.get(id);
  if (local) img.src = local;
  else if (id) {
    previewUrl(id).then((url) => {
      if (!url) throw new Error('no url');
      img.src = url;
    }).catch(() => figure.classList.add('broken'));
  }
  if (id) {
    resolve(id).then((url) => {
      if (!url) return;
      link.href = url;
      link.dataset.signed = '1';
    }).catch(() => {});
  }
  // Opens the original in the lightbox (a new tab with a modifier key, as links do).
  link.addEventListener('click', (e) => {
    if (!id || e.ctrlKey || e.metaKey || e.shiftKey || e.button === 1) return;
    e.preventDefault();
    openLightbox({ src: () => resolve(id, { fresh: link.dataset.signed !== '1' }), placeholder: img.currentSrc, label, from: link });
  });
  return figure;
}

/** The attachment part of a message, or null when it has none. */
export function renderAttachment(msg) {
  if (!msg || !(msg.url || msg.attachmentId || msg.filename)) return null;
  const id = attachmentIdOf(msg);
  const label = msg.filename || 'Attachment';
  return isImage(msg) && id ? imagePreview(msg, id, label) : fileCard(msg, id, label);
}
