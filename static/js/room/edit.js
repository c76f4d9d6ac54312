// Editing and deleting your own messages, within the server's edit window.
import { on } from './bus.js';
import { ctx, call } from './ctx.js';
import { $, el, button } from './dom.js';
import { showNotice } from './notice.js';
import { canModify, entries, get, has, patch, upsert } from './messages.js';

const composerInput = $('message-input');

function finish(entry, updated) {
  upsert(updated || entry.msg); // a fresh render drops the editor
  entry.el?.querySelector('[data-action="edit"]')?.focus();
}

async function save(entry, text) {
  if (text === entry.msg.body || !text.trim()) return finish(entry);
  try {
    const { details } = await call(`/api/v1/messages/${encodeURIComponent(entry.msg.messageId)}`, { method: 'PATCH', body: { body: text } });
    finish(entry, details);
  } catch (err) {
    showNotice(err, { transient: true });
    finish(entry);
  }
}

function startEdit(entry) {
  if (!canModify(entry.msg, entry.status) || entry.el.querySelector('.editor')) return;
  const body = entry.el.querySelector('.body');
  const form = el('form', 'editor');
  const label = el('label', 'visually-hidden', 'Edit message');
  const area = el('textarea');
  area.id = `edit-${entry.msg.messageId}`;
  label.htmlFor = area.id;
  area.value = entry.msg.body || '';
  area.rows = Math.min(8, Math.max(2, area.value.split('\n').length));
  area.maxLength = ctx.config.limits.maxMessageLength;
  const saveBtn = Object.assign(el('button', 'small primary', 'Save'), { type: 'submit' });
  const cancel = button('small', 'Cancel');
  const row = el('div', 'actions');
  row.append(saveBtn, cancel, el('span', 'hint', 'Enter to save, Esc to cancel'));
  form.append(label, area, row);
  body.hidden = true;
  body.after(form);
  form.addEventListener('submit', (e) => { e.preventDefault(); save(entry, area.value); });
  cancel.addEventListener('click', () => finish(entry));
  area.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { e.preventDefault(); finish(entry); composerInput.focus(); }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  area.focus();
  area.setSelectionRange(area.value.length, area.value.length);
}

async function confirmDelete(entry) {
  try {
    const { details } = await call(`/api/v1/messages/${encodeURIComponent(entry.msg.messageId)}`, { method: 'DELETE' });
    upsert(details);
    composerInput.focus();
  } catch (err) {
    showNotice(err, { transient: true });
  }
}

/** First click arms the button; a second click within 5 s deletes. */
function armDelete(btn) {
  btn.textContent = 'Confirm delete';
  btn.classList.add('danger');
  btn.dataset.action = 'confirm-delete';
  setTimeout(() => {
    if (!btn.isConnected) return;
    btn.textContent = 'Delete';
    btn.classList.remove('danger');
    btn.dataset.action = 'delete';
  }, 5000);
}

on('action:edit', ({ entry }) => startEdit(entry));
on('action:delete', ({ button: btn }) => armDelete(btn));
on('action:confirm-delete', ({ entry }) => confirmDelete(entry));
on('edit-last', () => {
  const last = entries().reverse().find((e) => canModify(e.msg, e.status) && e.msg.type !== 'file');
  if (last) startEdit(last);
});
on('sse:message-edited', ({ data }) => {
  const entry = data?.messageId && get(data.messageId);
  if (entry && !entry.el.querySelector('.editor')) upsert({ ...entry.msg, ...data }, entry.status);
});
on('sse:message-deleted', ({ data }) => {
  if (data?.messageId && has(data.messageId)) patch(data.messageId, { deleted: true, body: '' });
});
