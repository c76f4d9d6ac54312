// Shared state of the room page, DOM helpers, a tiny event bus and API calls
// bound to the session. Every other room module imports from here only (plus
// api.js), so the modules never import each other in a cycle.
import { api, errorText, sessionKey, storage } from '../api.js';

export { errorText, storage };

export const $ = (id) => document.getElementById(id);

/** Creates an element; text always goes through textContent (never HTML). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A <button type="button"> with a text label and optional aria-label. */
export function button(className, text, label) {
  const b = el('button', className, text);
  b.type = 'button';
  if (label) b.setAttribute('aria-label', label);
  return b;
}

// ---- identity ---------------------------------------------------------------
const conversationId = (() => {
  const v = document.querySelector('main[data-conversation-id]')?.getAttribute('data-conversation-id') || '';
  if (v && v !== '{{CONVERSATION_ID}}') return v;
  try { return decodeURIComponent(location.pathname.match(/^\/room\/([^/]+)/)?.[1] || ''); } catch { return ''; }
})();
const params = new URLSearchParams(location.search);
const storeKey = sessionKey(conversationId);
const embed = params.get('embed') === '1';

export const ctx = {
  conversationId,
  storeKey,
  embed,
  sessionId: params.get('sessionId') || storage.get(storeKey) || null, // null → rely on the cookie
  joinUrl: `/join?conversationId=${encodeURIComponent(conversationId)}`,
  me: null,        // the session, once loaded
  live: false,     // the event stream is open
  stopped: false,  // left or session ended: no reconnects, no sends
  config: {
    iceServers: [],
    embed: { showLeave: false, showCalls: false },
    limits: { maxMessageLength: 10000, maxUpload: 10 * 1024 * 1024 },
  },
};

// Keep the session id out of the address bar once it is stored (it stays in
// the URL when storage is blocked, so a reload still works).
if (params.has('sessionId') && storage.set(storeKey, ctx.sessionId)) {
  params.delete('sessionId');
  const q = params.toString();
  history.replaceState(null, '', location.pathname + (q ? `?${q}` : '') + location.hash);
}

// ---- event bus ----------------------------------------------------------------
const handlers = new Map();
export function on(type, fn) {
  if (!handlers.has(type)) handlers.set(type, []);
  handlers.get(type).push(fn);
}
/** Calls every handler; one failing handler never stops the others. */
export function emit(type, payload) {
  for (const fn of handlers.get(type) || []) {
    try { fn(payload); } catch (err) { console.warn(`handler for ${type} failed`, err); }
  }
}

// ---- API ----------------------------------------------------------------------
export const call = (path, opts = {}) => api(path, { ...opts, sessionId: ctx.sessionId });

/** Relays a signaling event; failures are reported to the caller. */
export const signal = (type, data, toUserId) => call('/api/v1/signaling', {
  method: 'POST', body: toUserId ? { type, data, toUserId } : { type, data },
});

/** Fire-and-forget variant for best-effort events (typing, presence). */
export const signalQuietly = (type, data, toUserId) => signal(type, data, toUserId).catch(() => {});

// ---- notices -----------------------------------------------------------------
const notice = $('room-notice');
let noticeTimer = 0;
/** Shows an error (or text) above the log; transient ones fade after a while. */
export function showNotice(errOrText, { transient = false } = {}) {
  if (errOrText?.status === 401) return emit('expired');
  clearTimeout(noticeTimer);
  notice.textContent = typeof errOrText === 'string' ? errOrText : errorText(errOrText);
  if (transient) noticeTimer = setTimeout(() => { notice.textContent = ''; }, 6000);
}
export function clearNotice() { notice.textContent = ''; }

export const sameName = (a, b) => String(a).trim().toLowerCase() === String(b).trim().toLowerCase();
export const isMine = (msg) => !!ctx.me && msg?.senderUserId === ctx.me.userId;
/** The service's own notices. Decided by role: users may post `type: "system"`, and
 *  an embedded user may be called "system"; only the service writes this role. */
export const isSystem = (msg) => msg?.senderRole === 'system';
