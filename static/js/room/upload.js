// File sending: the attach button, drag-and-drop onto the log and paste.
// Files are checked against the server's limit and upload types first, so
// the user hears at once what the server would refuse anyway. Text waiting
// in the message box goes with the (first) file as its caption.
import { ctx, uploadFile } from './ctx.js';
import { $ } from './dom.js';
import { showNotice, clearNotice } from './notice.js';
import { enqueue, giveBackCaption, takeCaption } from './composer.js';
import { rememberLocalFile } from './attachment-view.js';
import { scroller } from './messages.js';

const attachBtn = $('attach');
const fileInput = $('file-input');
const box = $('upload');
const bar = $('upload-progress');
const label = $('upload-label');
const cancelBtn = $('upload-cancel');

const queue = [];
let cancel = null; // AbortController of the upload in flight
let draining = false;

const mib = (n) => `${(n / 1048576).toFixed(n < 1048576 ? 2 : 1)} MiB`;

function problem(file) {
  const max = ctx.config.limits.maxUpload;
  if (file.size > max) return `${file.name} is ${mib(file.size)}; the limit is ${mib(max)}.`;
  if (!ctx.config.uploadTypes.includes(file.type)) return `${file.name}: files of this type cannot be sent.`;
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

async function uploadOne({ file, caption }) {
  const why = problem(file);
  if (why) { showNotice(why, { transient: true }); giveBackCaption(caption); return false; }
  showProgress(file, 0);
  cancel = new AbortController();
  try {
    const { details: att } = await uploadFile(file, {
      signal: cancel.signal,
      onProgress: (sent) => showProgress(file, Math.min(100, Math.round(sent * 100))),
    });
    showProgress(file, 100);
    const id = att.attachmentId;
    rememberLocalFile(id, file);
    enqueue({
      type: 'file', body: caption, attachmentId: id, filename: att.originalFilename,
      mimetype: att.mimeType, url: `/api/v1/attachments/${encodeURIComponent(id)}?download=true`,
    });
    label.textContent = `Sent ${file.name}`;
    return true;
  } catch (err) {
    if (err.name !== 'AbortError') showNotice(`${file.name}: ${err.message}`, { transient: true });
    giveBackCaption(caption);
    return false;
  } finally {
    cancel = null;
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
  if (!ctx.me || ctx.stopped || ctx.closed || !files.length) return;
  clearNotice();
  const caption = takeCaption();
  queue.push(...files.map((file, i) => ({ file, caption: i === 0 ? caption : '' })));
  drain();
}

attachBtn.addEventListener('click', () => {
  fileInput.accept = ctx.config.uploadTypes.join(',');
  fileInput.click();
});
fileInput.addEventListener('change', () => {
  uploadFiles([...fileInput.files]);
  fileInput.value = ''; // choosing the same file again must fire `change`
});
cancelBtn.addEventListener('click', () => { queue.length = 0; cancel?.abort(); hideProgress(); });

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
