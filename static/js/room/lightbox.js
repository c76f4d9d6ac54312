// The image lightbox: a modal <dialog> showing an attachment's original.
// Escape or the Close button closes it, and focus goes back to the
// preview that opened it.
import { $ } from './dom.js';

const dialog = $('lightbox');
const image = $('lightbox-image');
const caption = $('lightbox-caption');
const openLink = $('lightbox-open');
let returnTo = null;
let opened = 0; // which opening a late URL belongs to

/**
 * Opens the lightbox on an image: `src()` resolves the original's URL,
 * `placeholder` (the preview) shows meanwhile, `from` gets the focus back.
 */
export function openLightbox({ src, placeholder, label, from }) {
  const token = ++opened;
  returnTo = from;
  image.alt = label;
  image.src = placeholder || '';
  caption.textContent = label;
  openLink.hidden = true;
  if (!dialog.open) dialog.showModal();
  $('lightbox-close').focus();
  src().then((url) => {
    if (!url || token !== opened || !dialog.open) return;
    image.src = url;
    openLink.href = url;
    openLink.hidden = false;
  }).catch(() => { caption.textContent = `${label} (the original is unavailable)`; });
}

dialog.addEventListener('close', () => {
  image.removeAttribute('src');
  const back = returnTo;
  returnTo = null;
  if (back?.isConnected) back.focus();
});
$('lightbox-close').addEventListener('click', () => dialog.close());
// A click on the backdrop (outside the picture and its buttons) closes it too.
dialog.addEventListener('click', (e) => { if (e.target === dialog) dialog.close(); });
