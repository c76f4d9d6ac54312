// The join page: conversation id and join code (prefilled from the link)
// and a display name (the one this tab used last for the room); a
// successful join keeps the session id, code and name for this tab and
// opens the room, where anything left unsent goes out.
import { api, errorText } from './api.js';
import { joinCodeKey, nameKey, sessionKey, storage } from './storage.js';

const form = document.getElementById('join-form');
const errorBox = document.getElementById('join-error');
const submit = form.querySelector('button[type="submit"]');
const fields = {
  conversationId: document.getElementById('conversationId'),
  joinCode: document.getElementById('joinCode'),
  displayName: document.getElementById('displayName'),
};

const normalizeCode = (v) => v.toUpperCase().replace(/[^A-Z0-9]/g, '').slice(0, 6);

// Prefill from ?conversationId=&joinCode=
const params = new URLSearchParams(location.search);
if (params.get('conversationId')) fields.conversationId.value = params.get('conversationId');
if (params.get('joinCode')) fields.joinCode.value = normalizeCode(params.get('joinCode'));
// Joining again in this tab (e.g. after the session expired): the name used last time.
if (fields.conversationId.value) fields.displayName.value = storage.get(nameKey(fields.conversationId.value)) || '';
(Object.values(fields).find((f) => !f.value) || submit).focus();

fields.joinCode.addEventListener('input', () => {
  const el = fields.joinCode;
  const next = normalizeCode(el.value);
  if (next !== el.value) {
    const pos = Math.min(el.selectionStart ?? next.length, next.length);
    el.value = next;
    el.setSelectionRange(pos, pos);
  }
});

for (const f of Object.values(fields)) f.addEventListener('input', () => f.removeAttribute('aria-invalid'));

function showError(message, field) {
  errorBox.textContent = message;
  if (field) {
    field.setAttribute('aria-invalid', 'true');
    field.focus();
  }
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  errorBox.textContent = '';
  const conversationId = fields.conversationId.value.trim();
  const joinCode = normalizeCode(fields.joinCode.value);
  const displayName = fields.displayName.value.trim();
  const nameLength = [...displayName].length;

  if (!conversationId) return showError('Enter the conversation ID.', fields.conversationId);
  if (!/^[A-Z0-9]{6}$/.test(joinCode)) return showError('The join code is 6 letters or digits.', fields.joinCode);
  if (nameLength < 1 || nameLength > 50) return showError('Your display name must be 1 to 50 characters.', fields.displayName);

  submit.disabled = true;
  form.setAttribute('aria-busy', 'true');
  try {
    const { details } = await api('/api/v1/join', {
      method: 'POST',
      body: { conversationId, joinCode, displayName },
    });
    storage.set(sessionKey(details.conversationId), details.sessionId);
    storage.set(joinCodeKey(details.conversationId), joinCode);
    storage.set(nameKey(details.conversationId), displayName);
    location.assign(`/room/${encodeURIComponent(details.conversationId)}?sessionId=${encodeURIComponent(details.sessionId)}`);
  } catch (err) {
    const field = err.status === 409 ? fields.displayName
      : err.status === 403 && !/full|closed/i.test(err.message) ? fields.joinCode : null;
    showError(errorText(err), field);
    submit.disabled = false;
    form.removeAttribute('aria-busy');
  }
});
