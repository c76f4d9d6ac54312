// The room page's state (which conversation, our session, the server's
// client configuration) and the API bound to that session.
import { ApiError, api, upload } from '../api.js';
import { joinCodeKey, joinLink, sessionKey, storage } from '../storage.js';

const conversationId = document.querySelector('main[data-conversation-id]').getAttribute('data-conversation-id');
const params = new URLSearchParams(location.search);
const storeKey = sessionKey(conversationId);

export const ctx = {
  conversationId,
  storeKey,
  embed: params.get('embed') === '1',
  sessionId: params.get('sessionId') || storage.get(storeKey) || null, // null → rely on the cookie
  me: null,        // the session, once loaded
  config: null,    // GET /api/v1/client-config, loaded with the session
  conversation: null, // GET /api/v1/conversation: title, status, join code
  live: false,     // the event stream is open
  stopped: false,  // left or session ended: no reconnects, no sends
  closed: false,   // an admin closed the room: readable, no sends
};

/** The join form for this room, with its code when this tab has seen it. */
export const joinUrl = () => joinLink(conversationId, storage.get(joinCodeKey(conversationId)));

// Keep the session id out of the address bar once it is stored (it stays in
// the URL when storage is blocked, so a reload still works).
if (params.has('sessionId') && storage.set(storeKey, ctx.sessionId)) {
  params.delete('sessionId');
  const q = params.toString();
  history.replaceState(null, '', location.pathname + (q ? `?${q}` : '') + location.hash);
}

/** Loads the session and the client configuration (both needed before anything else). */
export async function loadPage() {
  const [config, session, conversation] = await Promise.all([
    api('/api/v1/client-config'), call('/api/v1/session'), call('/api/v1/conversation'),
  ]);
  ctx.config = config.details;
  ctx.me = session.details;
  ctx.conversation = conversation.details;
  if (ctx.conversation.joinCode) storage.set(joinCodeKey(conversationId), ctx.conversation.joinCode);
}

export const call = (path, opts = {}) => api(path, { ...opts, sessionId: ctx.sessionId });

export const uploadFile = (file, opts = {}) => upload('/api/v1/attachments', file, { ...opts, sessionId: ctx.sessionId });

/** Relays a signaling event; a type the server does not relay is refused here. */
export function signal(type, data, { to, keepalive } = {}) {
  if (!ctx.config.signalTypes.includes(type)) return Promise.reject(new ApiError(`"${type}" is not a signaling type`, 400));
  return call('/api/v1/signaling', { method: 'POST', body: to ? { type, data, toUserId: to } : { type, data }, keepalive });
}

/** Fire-and-forget variant for best-effort events (typing, announcements). */
export const signalQuietly = (type, data, opts) => signal(type, data, opts).catch(() => {});

export const isMine = (msg) => !!ctx.me && msg?.senderUserId === ctx.me.userId;
/** The service's own notices (joins, leaves, integrators). Decided by role: users may
 *  post `type: "system"`, and an embedded user may be called "system"; only the service
 *  writes this role. */
export const isSystem = (msg) => msg?.senderRole === 'system';
