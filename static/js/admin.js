// The admin page: with the admin password, create a conversation (optional
// title and custom id) and copy its join link, or look one up and close it
// (after a confirmation). Errors stand next to the field they are about;
// the conversations this browser created or looked up are listed as recent.
import { api, errorText } from './api.js';
import { confirmAction } from './confirm.js';
import { joinLink } from './storage.js';

const $ = (id) => document.getElementById(id);
const password = $('admin-password');
const title = $('create-title');
const customId = $('custom-id');
const lookupId = $('lookup-id');
const result = $('admin-result');
const joinLinkEl = $('join-link');
const RECENT_KEY = 'chats3:admin:recent';
const RECENT_MAX = 20;
let busy = false;

/** "3 Dec 2026, 11:40" in the reader's locale; "—" for none. */
const human = (iso) => {
  const d = new Date(iso || '');
  return iso && !Number.isNaN(d.getTime()) ? d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' }) : '—';
};

// ---- errors next to their fields ---------------------------------------------------
const fieldErrors = { 'admin-password': password, 'create-title': title, 'custom-id': customId, 'lookup-id': lookupId };

function clearErrors() {
  for (const [id, field] of Object.entries(fieldErrors)) {
    $(`${id}-error`).textContent = '';
    field.removeAttribute('aria-invalid');
  }
  $('create-error').textContent = '';
  $('lookup-error').textContent = '';
}

/** Shows `message` under `field` (or in the form's own line) and focuses the field. */
function fail(message, field, formLine) {
  if (field) {
    $(`${field.id}-error`).textContent = message;
    field.setAttribute('aria-invalid', 'true');
    field.focus();
  } else {
    $(formLine).textContent = message;
  }
}
for (const field of Object.values(fieldErrors)) {
  field.addEventListener('input', () => { $(`${field.id}-error`).textContent = ''; field.removeAttribute('aria-invalid'); });
}

/** The field a server error is about: the password on 403, the id on 404/409, a 400's named field. */
function fieldOf(err, fallbackId) {
  if (err.status === 403) return password;
  if (err.status === 404 || err.status === 409) return fallbackId;
  const named = Array.isArray(err.details) ? err.details.map((x) => x?.path?.join?.('.')).find(Boolean) : null;
  return { title, conversationId: fallbackId, adminPassword: password }[named] || null;
}

function requirePassword(formLine) {
  if (password.value) return password.value;
  fail('Enter the admin password.', password, formLine);
  return null;
}

async function run(button, formLine, fallbackField, work) {
  if (busy) return;
  busy = true;
  clearErrors();
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    await work();
  } catch (err) {
    fail(errorText(err), fieldOf(err, fallbackField), formLine);
  } finally {
    busy = false;
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

// ---- recent conversations ---------------------------------------------------------------
function readRecent() {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT_KEY) || '[]');
    return Array.isArray(list) ? list.filter((c) => c && typeof c.conversationId === 'string') : [];
  } catch { return []; }
}

function remember(c) {
  const list = [c, ...readRecent().filter((x) => x.conversationId !== c.conversationId)].slice(0, RECENT_MAX);
  try { localStorage.setItem(RECENT_KEY, JSON.stringify(list)); } catch { /* storage blocked: the list stays as it is */ }
  showRecent();
}

function showRecent() {
  const list = readRecent();
  $('recent-section').hidden = list.length === 0;
  $('recent').replaceChildren(...list.map((c) => {
    const li = document.createElement('li');
    const pick = document.createElement('button');
    pick.type = 'button';
    pick.className = 'small';
    pick.textContent = c.title ? `${c.title} (${c.conversationId})` : c.conversationId;
    pick.setAttribute('aria-label', `Select ${pick.textContent}`);
    pick.addEventListener('click', () => { lookupId.value = c.conversationId; lookupId.focus(); });
    const info = document.createElement('span');
    info.className = `hint status-${c.status}`;
    info.textContent = c.status === 'closed' ? `closed ${human(c.closedAt)}` : `created ${human(c.createdAt)}`;
    li.append(pick, ' ', info);
    return li;
  }));
}

// ---- create ----------------------------------------------------------------------------------
function showCreated(c) {
  const link = joinLink(c.conversationId, c.joinCode, location.origin);
  $('created-title').textContent = c.title ? `“${c.title}”` : '';
  $('created-id').textContent = c.conversationId;
  $('created-code').textContent = c.joinCode;
  $('created-at').textContent = human(c.createdAt);
  joinLinkEl.href = link;
  joinLinkEl.textContent = link;
  $('copy-status').textContent = '';
  $('created').hidden = false;
  result.replaceChildren(); // one answer on screen at a time
}

$('auth-form').addEventListener('submit', (e) => e.preventDefault());

$('create-form').addEventListener('submit', (e) => {
  e.preventDefault();
  clearErrors();
  const adminPassword = requirePassword('create-error');
  if (adminPassword === null) return;
  const conversationId = customId.value.trim();
  const name = title.value.trim();
  if (conversationId && !/^[A-Za-z0-9_-]{1,100}$/.test(conversationId)) {
    return fail('Only letters, digits, “_” and “-” (up to 100).', customId);
  }
  if ([...name].length > 100) return fail('The title is at most 100 characters.', title);
  run($('create'), 'create-error', customId, async () => {
    const body = { adminPassword };
    if (conversationId) body.conversationId = conversationId;
    if (name) body.title = name;
    const { details: c } = await api('/api/v1/admin/conversations', { method: 'POST', body });
    showCreated(c);
    lookupId.value = c.conversationId;
    remember(c);
  });
});

$('copy-link').addEventListener('click', async () => {
  const status = $('copy-status');
  try {
    await navigator.clipboard.writeText(joinLinkEl.href);
    status.textContent = 'Copied.';
  } catch {
    const range = document.createRange();
    range.selectNodeContents(joinLinkEl);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    status.textContent = 'Press Ctrl+C (⌘C) to copy.';
  }
});

// ---- look up and close -----------------------------------------------------------------------
function showResult(heading, c) {
  const dl = document.createElement('dl');
  const rows = [['Conversation ID', c.conversationId], ['Title', c.title || '—'], ['Join code', c.joinCode],
    ['Status', c.status], ['Created', human(c.createdAt)], ['Closed', human(c.closedAt)]];
  for (const [label, value] of rows) {
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = label;
    dd.textContent = value ?? '';
    dl.append(dt, dd);
  }
  const h = document.createElement('h3');
  h.textContent = heading;
  $('created').hidden = true; // one answer on screen at a time
  result.replaceChildren(h, dl);
}

function manage(button, suffix, heading) {
  clearErrors();
  const adminPassword = requirePassword('lookup-error');
  if (adminPassword === null) return Promise.resolve();
  const id = lookupId.value.trim();
  if (!id) { fail('Enter a conversation ID.', lookupId); return Promise.resolve(); }
  return run(button, 'lookup-error', lookupId, async () => {
    const { details } = await api(`/api/v1/admin/conversations/${encodeURIComponent(id)}${suffix}`, {
      method: 'POST', body: { adminPassword },
    });
    showResult(heading, details);
    remember(details);
  });
}

$('lookup-form').addEventListener('submit', (e) => {
  e.preventDefault();
  manage($('lookup'), '', 'Conversation');
});

$('close').addEventListener('click', async () => {
  const id = lookupId.value.trim();
  if (!id) { clearErrors(); return fail('Enter a conversation ID.', lookupId); }
  const ok = await confirmAction({
    title: `Close “${id}”?`,
    text: 'Its members can still read it, but nobody can send or join any more. This cannot be undone.',
    confirmLabel: 'Close conversation',
  });
  if (ok) manage($('close'), '/close', 'Closed');
});

showRecent();
