// The room page's event bus: stream events arrive as `sse:<type>`, and the
// modules tell each other what happened (`live`, `expired`, `message-changed`,
// `action:<name>`...) without importing one another.

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
