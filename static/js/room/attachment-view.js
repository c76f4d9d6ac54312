// How a file message shows its attachment: an inline preview for images (the
// server's thumbnail, the original where there is none) that opens the
// original, and a download link for everything else. Downloads need the
// session, so we ask the API for a signed URL (sent with x-session-id) and use
// that.
import { call } from './ctx.js';
import { el } from './dom.js';

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

/** The signed URL of an attachment's original or thumbnail (null when unusable),
 *  cached while it is fresh. */
function resolve(id, { fresh = false, variant = 'original' } = {}) {
  const key = `${id} ${variant}`;
  const hit = signed.get(key);
  if (hit && !fresh && Date.now() - hit.at < SIGNED_TTL_MS) return hit.promise;
  const query = variant === 'original' ? '' : `?variant=${variant}`;
  const promise = call(`/api/v1/attachments/${encodeURIComponent(id)}${query}`).then(({ details }) => safeHref(details.signedUrl));
  signed.set(key, { at: Date.now(), promise });
  promise.catch(() => signed.delete(key));
  return promise;
}

/** What an image preview shows: its thumbnail, or the original for an upload
 *  that has none (one stored before thumbnails, or by another service). */
const previewUrl = (id) => resolve(id, { variant: 'thumbnail' }).catch(() => resolve(id));

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
  }).catch(() => { link.textContent = `${link.textContent} (unavailable)`; });
}

function downloadLink(msg, id, label) {
  const href = safeHref(msg.url);
  if (!href && !id) return el('span', 'attachment file', label);
  const a = el('a', 'attachment file', label);
  a.href = href || '#';
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  if (id) a.addEventListener('click', (e) => openFresh(e, id, a));
  return a;
}

function imagePreview(msg, id, label) {
  const figure = el('figure', 'attachment image');
  const link = downloadLink(msg, id, '');
  link.classList.remove('file');
  link.setAttribute('aria-label', `Open image ${label}`);
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
    resolve(id).then((url) => {
      if (!url) return;
      link.href = url;
      link.dataset.signed = '1';
    }).catch(() => {});
  }
  return figure;
}

/** The attachment part of a message, or null when it has none. */
export function renderAttachment(msg) {
  if (!msg || !(msg.url || msg.attachmentId || msg.filename)) return null;
  const id = attachmentIdOf(msg);
  const label = msg.filename || 'Attachment';
  return isImage(msg) && id ? imagePreview(msg, id, label) : downloadLink(msg, id, label);
}
