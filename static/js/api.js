// The one client of the chats3 API. JSON calls go through fetch, file
// uploads through XMLHttpRequest (only it reports upload progress); both
// resolve with the envelope {success, message, details, meta} and reject
// with an ApiError, whatever went wrong.

/** A failed call: `status` is 0 when the server was not reached. */
export class ApiError extends Error {
  constructor(message, status, details, retryAfter) {
    super(message);
    this.status = status;
    this.details = details;
    this.retryAfter = retryAfter; // seconds, when the server sent Retry-After
  }
}

const unreachable = () => new ApiError('Network error. Check your connection and try again.', 0);

function headers(sessionId, json) {
  const h = { Accept: 'application/json' };
  if (json) h['Content-Type'] = 'application/json';
  if (sessionId) h['x-session-id'] = sessionId;
  return h;
}

/** The envelope of a successful answer; throws the ApiError of any other. */
function settle(status, text, retryAfter) {
  let env = null;
  try { env = JSON.parse(text); } catch { /* not JSON: reported by status below */ }
  if (status >= 200 && status < 300 && env?.success === true) return env;
  const seconds = Number(retryAfter);
  throw new ApiError(env?.message || `Request failed (${status})`, status, env?.details, seconds > 0 ? seconds : undefined);
}

/** Calls a JSON route; `keepalive` lets the request outlive the page. */
export async function api(path, { method = 'GET', body, sessionId, keepalive = false } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: headers(sessionId, body !== undefined),
      credentials: 'same-origin',
      keepalive,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw unreachable();
  }
  return settle(res.status, await res.text().catch(() => ''), res.headers.get('Retry-After'));
}

/**
 * POSTs `file` as the multipart field `file`. `onProgress` gets the sent
 * fraction (0..1); aborting `signal` cancels with an ApiError named AbortError.
 */
export function upload(path, file, { sessionId, onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    for (const [name, value] of Object.entries(headers(sessionId, false))) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) onProgress?.(e.loaded / e.total); });
    xhr.addEventListener('load', () => {
      try { resolve(settle(xhr.status, xhr.responseText, xhr.getResponseHeader('Retry-After'))); } catch (err) { reject(err); }
    });
    xhr.addEventListener('error', () => reject(unreachable()));
    xhr.addEventListener('abort', () => reject(Object.assign(new ApiError('Upload cancelled.', 0), { name: 'AbortError' })));
    signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    const data = new FormData();
    data.append('file', file, file.name);
    xhr.send(data);
  });
}

/** Human-readable text for an ApiError, with the fields a 400 names. */
export function errorText(err) {
  let text = err?.message || 'Something went wrong.';
  if (err?.status === 400 && Array.isArray(err.details)) {
    const parts = err.details.map((x) => [x?.path?.join?.('.'), x?.message].filter(Boolean).join(': ')).filter(Boolean);
    if (parts.length) text += ` (${parts.join('; ')})`;
  }
  // Said once: the server's own text may already say when to retry.
  if (err?.retryAfter && !/\b(retry|try again)\b/i.test(text)) text += ` Try again in ${err.retryAfter} s.`;
  return text;
}
