// Keyboard access to the message list with one tab stop: a roving tab index.
// One message is in the tab order (the newest until the reader moves);
// ↑/↓, Home/End and PageUp/PageDown move between messages, and Tab from a
// focused message reaches its links, reactions and actions, which are out
// of the tab order in every other message.
import { on } from './bus.js';
import { list } from './messages.js';

const FOCUSABLE = 'a[href], button, textarea, input, [tabindex]';
let active = null; // the <li> in the tab order
let chosen = false; // the reader has been in the list: their place stays

const messages = () => [...list.querySelectorAll(':scope > li.message')];

/** Puts the controls of `li` in or out of the tab order. */
function setInner(li, on) {
  for (const node of li.querySelectorAll(FOCUSABLE)) {
    if (node.closest('.editor, .reaction-picker')) continue; // open only while in use
    node.tabIndex = on ? 0 : -1;
  }
}

function activate(li) {
  if (!li || li === active) return;
  if (active?.isConnected) { active.tabIndex = -1; setInner(active, false); }
  active = li;
  li.tabIndex = 0;
  setInner(li, true);
}

/** Keeps exactly one message in the tab order: the one the reader moved to, else the newest. */
function settle() {
  const all = messages();
  if (active && !active.isConnected) active = null;
  if ((!active || !chosen) && all.length) activate(all[all.length - 1]);
}

function move(from, key) {
  const all = messages();
  const i = all.indexOf(from);
  const page = 10;
  const next = { ArrowUp: i - 1, ArrowDown: i + 1, Home: 0, End: all.length - 1, PageUp: i - page, PageDown: i + page }[key];
  const target = all[Math.max(0, Math.min(all.length - 1, next))];
  if (!target) return;
  activate(target);
  target.focus();
  target.scrollIntoView({ block: 'nearest' });
}

list.addEventListener('keydown', (e) => {
  const li = e.target.closest?.('li.message');
  // Only on the message itself: inside the editor or a picker the keys are theirs.
  if (!li || e.target !== li || e.altKey || e.ctrlKey || e.metaKey) return;
  if (['ArrowUp', 'ArrowDown', 'Home', 'End', 'PageUp', 'PageDown'].includes(e.key)) {
    e.preventDefault();
    move(li, e.key);
  }
});
list.addEventListener('focusin', (e) => {
  const li = e.target.closest?.('li.message');
  if (!li) return;
  chosen = true;
  activate(li);
});

// A message (re)rendered: its controls follow its place in the tab order.
on('message-rendered', (entry) => {
  const li = entry.el;
  if (active && !active.isConnected && li.dataset.messageId === active.dataset.messageId) active = li;
  li.tabIndex = li === active ? 0 : -1;
  setInner(li, li === active);
  queueMicrotask(settle);
});
on('message-changed', () => queueMicrotask(settle));
// Controls added later (reaction chips, a failure's buttons) follow too.
new MutationObserver((records) => {
  for (const r of records) {
    for (const node of r.addedNodes) {
      if (node.nodeType !== 1 || node.matches('li')) continue;
      const li = node.closest('li.message');
      if (li && li !== active && !node.closest('.editor, .reaction-picker')) {
        if (node.matches(FOCUSABLE)) node.tabIndex = -1;
        for (const inner of node.querySelectorAll(FOCUSABLE)) inner.tabIndex = -1;
      }
    }
  }
}).observe(list, { childList: true, subtree: true });
