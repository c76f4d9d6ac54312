// File sending: the attach button, drag-and-drop onto the log and paste.
// XMLHttpRequest (not fetch) because only it reports upload progress.
import { $, ctx, showNotice, clearNotice } from './ctx.js';
import { enqueue } from './composer.js';
import { rememberLocalFile } from './attachment-view.js';
import { scroller } from './messages.js';

const attachBtn = $('attach');
const fileInput = $('file-input');
const box = $('upload');
const bar = $('upload-progress');
const label = $('upload-label');
const cancelBtn = $('upload-cancel');

const ALLOWED = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'application/pdf', 'text/plain',
  'application/msword', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document']);
const BY_EXT = { jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', webp: 'image/webp', pdf: 'application/pdf',
  txt: 'text/plain', doc: 'application/msword', docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document' };

const queue = [];
let current = null; // the XMLHttpRequest in flight
let draining = false;

const typeOf = (file) => file.type || BY_EXT[(file.name.split('.').pop() || '').toLowerCase()] || '';
const mib = (n) => `${(n / 1048576).toFixed(n < 1048576 ? 2 : 1)} MiB`;

// The server checks content against the declared type; checking the first
// bytes here too saves a doomed upload.
const MAGIC = {
  'image/jpeg': [[0xff, 0xd8, 0xff]], 'image/png': [[0x89, 0x50, 0x4e, 0x47]], 'image/gif': [[0x47, 0x49, 0x46, 0x38]],
  'image/webp': [[0x52, 0x49, 0x46, 0x46]], 'application/pdf': [[0x25, 0x50, 0x44, 0x46]],
  'application/msword': [[0xd0, 0xcf, 0x11, 0xe0]],
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': [[0x50, 0x4b, 0x03, 0x04]],
};
async function contentMatches(file) {
  const signatures = MAGIC[typeOf(file)];
  if (!signatures) return true;
  try {
    const head = new Uint8Array(await file.slice(0, 8).arrayBuffer());
    return signatures.some((sig) => sig.every((byte, i) => head[i] === byte));
  } catch { return true; } // can't read it here: let the server decide
}

/** Checks what the server would refuse anyway, so the user hears it at once. */
async function problem(file) {
  const max = ctx.config.limits.maxUpload || 10485760;
  if (file.size > max) return `${file.name} is ${mib(file.size)}; the limit is ${mib(max)}.`;
  if (!ALLOWED.has(typeOf(file))) return `${file.name}: only images (JPEG, PNG, GIF, WebP), PDF, text and Word files can be sent.`;
  if (!(await contentMatches(file))) return `${file.name} does not look like a ${typeOf(file)} file.`;
  return '';
}

function showProgress(file, percent) {
  box.hidden = false;
  bar.value = percent;
  bar.setAttribute('aria-valuetext', `${percent}%`);
  label.textContent = percent >= 100 ? `Processing ${file.name}…` : `Uploading ${file.name}: ${percent}%`;
}

function hideProgress(delay = 0) {
  setTimeout(() => { if (!draining) box.hidden = true; }, delay);
}

function send(file) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    current = xhr;
    xhr.open('POST', '/api/v1/attachments');
    xhr.setRequestHeader('Accept', 'application/json');
    if (ctx.sessionId) xhr.setRequestHeader('x-session-id', ctx.sessionId);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) showProgress(file, Math.min(100, Math.round((e.loaded / e.total) * 100)));
    });
    xhr.addEventListener('load', () => {
      let env = null;
      try { env = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 200 && env?.success) resolve(env.details);
      else reject(Object.assign(new Error(env?.message || `Upload failed (${xhr.status})`), { status: xhr.status }));
    });
    xhr.addEventListener('error', () => reject(Object.assign(new Error('Upload failed: network error.'), { status: 0 })));
    xhr.addEventListener('abort', () => reject(Object.assign(new Error('Upload cancelled.'), { status: -1 })));
    const data = new FormData();
    data.append('file', file, file.name);
    xhr.send(data);
  });
}

async function uploadOne(file) {
  const why = await problem(file);
  if (why) { showNotice(why, { transient: true }); return false; }
  showProgress(file, 0);
  try {
    const att = await send(file);
    showProgress(file, 100);
    const id = att.attachmentId;
    rememberLocalFile(id, file);
    enqueue({
      type: 'file', body: '', attachmentId: id, filename: att.originalFilename || file.name,
      mimetype: att.mimeType || typeOf(file), url: `/api/v1/attachments/${encodeURIComponent(id)}?download=true`,
    });
    label.textContent = `Sent ${file.name}`;
    return true;
  } catch (err) {
    if (err.status !== -1) showNotice(`${file.name}: ${err.message}`, { transient: true });
    return false;
  } finally {
    current = null;
  }
}

async function drain() {
  if (draining) return;
  draining = true;
  let ok = false;
  while (queue.length) ok = await uploadOne(queue.shift());
  draining = false;
  hideProgress(ok ? 1500 : 0); // leave "Sent" readable for a moment
}

export function uploadFiles(files) {
  if (!ctx.me || ctx.stopped || !files.length) return;
  clearNotice();
  queue.push(...files);
  drain();
}

attachBtn.addEventListener('click', () => fileInput.click());
fileInput.addEventListener('change', () => {
  uploadFiles([...fileInput.files]);
  fileInput.value = ''; // choosing the same file again must fire `change`
});
cancelBtn.addEventListener('click', () => { queue.length = 0; current?.abort(); hideProgress(); });

// Drag and drop onto the message log.
const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
let depth = 0;
scroller.addEventListener('dragenter', (e) => { if (hasFiles(e)) { depth++; scroller.classList.add('dropping'); } });
scroller.addEventListener('dragover', (e) => { if (hasFiles(e)) { e.preventDefault(); e.dataTransfer.dropEffect = 'copy'; } });
scroller.addEventListener('dragleave', () => { if (--depth <= 0) { depth = 0; scroller.classList.remove('dropping'); } });
scroller.addEventListener('drop', (e) => {
  depth = 0;
  scroller.classList.remove('dropping');
  if (!hasFiles(e)) return;
  e.preventDefault();
  uploadFiles([...e.dataTransfer.files]);
});
// Dropping a file elsewhere on the page must not navigate away from the room.
window.addEventListener('dragover', (e) => { if (hasFiles(e)) e.preventDefault(); });
window.addEventListener('drop', (e) => { if (hasFiles(e)) e.preventDefault(); });

// Pasting an image (e.g. a screenshot) into the message box.
$('message-input').addEventListener('paste', (e) => {
  const files = [...(e.clipboardData?.files || [])];
  // Pasted text (even with an image alongside, as from a web page) stays text.
  if (!files.length || e.clipboardData.getData('text/plain')) return;
  e.preventDefault();
  uploadFiles(files);
});
