// A confirmation asked in a modal <dialog> (for acts that cannot be undone:
// closing a room, leaving it). The browser keeps focus inside the dialog
// and closes it on Escape; focus goes back to what had it before.

let dialog = null;

function build() {
  const d = document.createElement('dialog');
  d.id = 'confirm-dialog';
  d.className = 'confirm-dialog';
  d.setAttribute('aria-labelledby', 'confirm-title');
  d.setAttribute('aria-describedby', 'confirm-text');
  const form = document.createElement('form');
  form.method = 'dialog';
  const title = Object.assign(document.createElement('h2'), { id: 'confirm-title' });
  const text = Object.assign(document.createElement('p'), { id: 'confirm-text' });
  const row = Object.assign(document.createElement('div'), { className: 'actions' });
  const cancel = Object.assign(document.createElement('button'), { type: 'submit', value: 'cancel', className: 'cancel', textContent: 'Cancel' });
  const ok = Object.assign(document.createElement('button'), { type: 'submit', value: 'confirm', className: 'confirm' });
  row.append(cancel, ok);
  form.append(title, text, row);
  d.append(form);
  document.body.append(d);
  return d;
}

/**
 * Asks a yes/no question; resolves true when the user confirms. `danger`
 * marks the confirming button as destructive. Cancel has the focus first,
 * so Enter pressed by habit does nothing harmful.
 */
export function confirmAction({ title, text, confirmLabel, danger = true }) {
  dialog ||= build();
  const back = document.activeElement;
  dialog.querySelector('#confirm-title').textContent = title;
  dialog.querySelector('#confirm-text').textContent = text;
  const ok = dialog.querySelector('.confirm');
  ok.textContent = confirmLabel;
  ok.className = `confirm ${danger ? 'danger' : 'primary'}`;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      if (back && back.isConnected) back.focus();
      resolve(dialog.returnValue === 'confirm');
    }, { once: true });
    dialog.showModal();
    dialog.querySelector('.cancel').focus();
  });
}
