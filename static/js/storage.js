// The tab's sessionStorage, wrapped so it never throws (storage can be
// blocked, e.g. in iframes), the keys a conversation's session id and join
// code are kept under, and the join link built from them.

export const sessionKey = (conversationId) => `chats3:session:${conversationId}`;
/** The join code this tab last saw for a room, so "Join again" can carry it. */
export const joinCodeKey = (conversationId) => `chats3:join-code:${conversationId}`;
/** The display name this tab last joined a room under. */
export const nameKey = (conversationId) => `chats3:name:${conversationId}`;

/** The join page for a room, prefilled with its code when there is one. */
export function joinLink(conversationId, joinCode, origin = '') {
  const q = new URLSearchParams({ conversationId });
  if (joinCode) q.set('joinCode', joinCode);
  return `${origin}/join?${q}`;
}

export const storage = {
  get(key) { try { return sessionStorage.getItem(key); } catch { return null; } },
  set(key, value) { try { sessionStorage.setItem(key, value); return true; } catch { return false; } },
  remove(key) { try { sessionStorage.removeItem(key); } catch { /* blocked: nothing to remove */ } },
};
