// The notice line above the message log: errors and short messages. A 401
// is not shown but reported as `expired`, which ends the session.
import { errorText } from '../api.js';
import { emit } from './bus.js';
import { $ } from './dom.js';

const notice = $('room-notice');
let timer = 0;

/** Shows an error (or text); transient ones fade after a while. */
export function showNotice(errOrText, { transient = false } = {}) {
  if (errOrText?.status === 401) return emit('expired');
  clearTimeout(timer);
  notice.textContent = typeof errOrText === 'string' ? errOrText : errorText(errOrText);
  if (transient) timer = setTimeout(() => { notice.textContent = ''; }, 6000);
}

export function clearNotice() { notice.textContent = ''; }
