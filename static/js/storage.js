// The tab's sessionStorage, wrapped so it never throws (storage can be
// blocked, e.g. in iframes), and the key a conversation's session id is kept under.

export const sessionKey = (conversationId) => `chats3:session:${conversationId}`;

export const storage = {
  get(key) { try { return sessionStorage.getItem(key); } catch { return null; } },
  set(key, value) { try { sessionStorage.setItem(key, value); return true; } catch { return false; } },
  remove(key) { try { sessionStorage.removeItem(key); } catch { /* blocked: nothing to remove */ } },
};
