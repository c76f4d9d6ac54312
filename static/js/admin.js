// The admin page: with the admin password, create a conversation (optional
// custom id) and copy its join link, or look one up and close it.
import { api, errorText } from './api.js';

const $ = (id) => document.getElementById(id);
const password = $('admin-password');
const customId = $('custom-id');
const lookupId = $('lookup-id');
const errorBox = $('admin-error');
const result = $('admin-result');
const joinLink = $('join-link');
let busy = false;

const fail = (message, field) => {
  errorBox.textContent = message;
  if (field) field.focus();
};

function requirePassword() {
  if (password.value) return password.value;
  fail('Enter the admin password.', password);
  return null;
}

async function run(button, work) {
  if (busy) return;
  busy = true;
  errorBox.textContent = '';
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    await work();
  } catch (err) {
    result.replaceChildren();
    fail(errorText(err), err.status === 403 ? password : null);
  } finally {
    busy = false;
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

function showResult(title, c) {
  const dl = document.createElement('dl');
  const rows = [['Conversation ID', c.conversationId], ['Join code', c.joinCode], ['Status', c.status],
    ['Created', c.createdAt], ['Closed', c.closedAt || '—']];
  for (const [label, value] of rows) {
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = label;
    dd.textContent = value ?? '';
    dl.append(dt, dd);
  }
  const h = document.createElement('h3');
  h.textContent = title;
  result.replaceChildren(h, dl);
}

$('auth-form').addEventListener('submit', (e) => e.preventDefault());

$('create-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const adminPassword = requirePassword();
  if (adminPassword === null) return;
  const conversationId = customId.value.trim();
  if (conversationId && !/^[A-Za-z0-9_-]{1,100}$/.test(conversationId)) {
    return fail('The custom ID may only use letters, digits, "_" and "-" (up to 100).', customId);
  }
  run($('create'), async () => {
    const body = conversationId ? { adminPassword, conversationId } : { adminPassword };
    const { details: c } = await api('/api/v1/admin/conversations', { method: 'POST', body });
    const link = `${location.origin}/join?conversationId=${encodeURIComponent(c.conversationId)}&joinCode=${encodeURIComponent(c.joinCode)}`;
    $('created-id').textContent = c.conversationId;
    $('created-code').textContent = c.joinCode;
    joinLink.href = link;
    joinLink.textContent = link;
    $('copy-status').textContent = '';
    $('created').hidden = false;
    lookupId.value = c.conversationId;
    showResult('Created', c);
  });
});

$('copy-link').addEventListener('click', async () => {
  const status = $('copy-status');
  try {
    await navigator.clipboard.writeText(joinLink.href);
    status.textContent = 'Copied.';
  } catch {
    const range = document.createRange();
    range.selectNodeContents(joinLink);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    status.textContent = 'Press Ctrl+C (⌘C) to copy.';
  }
});

function manage(button, suffix, title) {
  const adminPassword = requirePassword();
  if (adminPassword === null) return;
  const id = lookupId.value.trim();
  if (!id) return fail('Enter a conversation ID.', lookupId);
  run(button, async () => {
    const { details } = await api(`/api/v1/admin/conversations/${encodeURIComponent(id)}${suffix}`, {
      method: 'POST', body: { adminPassword },
    });
    showResult(title, details);
  });
}

$('lookup-form').addEventListener('submit', (e) => {
  e.preventDefault();
  manage($('lookup'), '', 'Conversation');
});
$('close').addEventListener('click', () => manage($('close'), '/close', 'Closed'));
