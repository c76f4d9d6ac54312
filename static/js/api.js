// Small fetch helper for the chats3 JSON API (envelope: {success, message, details, meta}).

/**
 * Calls the API and returns the parsed envelope.
 * Throws an Error with .status (0 = network failure), .message, .details and
 * .retryAfter (seconds, when the server sent Retry-After) when !success.
 */
export async function api(path, { method = 'GET', body, sessionId } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (sessionId) headers['x-session-id'] = sessionId;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw apiError('Network error. Check your connection and try again.', 0);
  }
  let env = null;
  try { env = await res.json(); } catch { /* not JSON */ }
  if (!res.ok || !env || env.success !== true) {
    const err = apiError((env && env.message) || `Request failed (${res.status})`, res.status, env);
    const retryAfter = Number(res.headers.get('Retry-After'));
    if (retryAfter > 0) err.retryAfter = retryAfter;
    throw err;
  }
  return env;
}

function apiError(message, status, env = null) {
  const err = new Error(message);
  err.status = status;
  err.details = env ? env.details : undefined;
  return err;
}

/** Human-readable text for an error thrown by api(), including 400 field details. */
export function errorText(err) {
  let text = (err && err.message) || 'Something went wrong.';
  const d = err && err.details;
  if (err && err.status === 400 && d && typeof d === 'object') {
    const items = Array.isArray(d) ? d : Object.entries(d).map(([field, message]) => ({ field, message }));
    const parts = items.map((x) => (typeof x === 'string' ? x
      : [x.field ?? x.path ?? x.name, typeof x.message === 'string' ? x.message : null].filter(Boolean).join(': ')))
      .filter(Boolean);
    if (parts.length) text += ` (${parts.join('; ')})`;
  }
  if (err && err.retryAfter) text += ` Try again in ${err.retryAfter} s.`;
  return text;
}

export const sessionKey = (conversationId) => `chats3:session:${conversationId}`;

/** sessionStorage that never throws (storage can be blocked, e.g. in iframes). */
export const storage = {
  get(key) { try { return sessionStorage.getItem(key); } catch { return null; } },
  set(key, value) { try { sessionStorage.setItem(key, value); return true; } catch { return false; } },
  remove(key) { try { sessionStorage.removeItem(key); } catch { /* ignore */ } },
};
