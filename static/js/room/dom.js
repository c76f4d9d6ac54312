// Element helpers for the room page. Text always goes through textContent,
// never HTML, so message bodies and names cannot inject markup.

export const $ = (id) => document.getElementById(id);

/** Creates an element with an optional class and text. */
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
