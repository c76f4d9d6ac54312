// The room page: loads the session and the client configuration, then
// starts the modules under ./room/, each owning one feature. They share
// state through room/ctx.js and talk through the event bus (room/bus.js).
import { ctx, loadPage } from './room/ctx.js';
import { showNotice } from './room/notice.js';
import { connect, setConn } from './room/stream.js';
import { loadLatest } from './room/history.js';
import { enableComposer, restoreOutbox } from './room/composer.js';
import { setupCalls } from './room/calls.js';
import { endSession, setupLeave } from './room/leave.js';
import { tellParent } from './room/embed-bridge.js';
import './room/people.js';
import './room/reactions.js';
import './room/receipts.js';
import './room/edit.js';
import './room/upload.js';
import './room/search.js';

/** True once the session and configuration are in; otherwise ends or retries. */
async function load() {
  try {
    await loadPage();
    return true;
  } catch (err) {
    if (err.status === 401) { endSession('No session for this conversation.'); return false; }
    setConn('offline');
    showNotice(err);
    setTimeout(init, 5000); // e.g. the network is down: try again
    return false;
  }
}

async function init() {
  const title = document.getElementById('room-title');
  title.textContent = ctx.conversationId || 'Conversation';
  title.title = title.textContent; // the heading may be cut short on a phone
  if (ctx.conversationId) document.title = `${ctx.conversationId} · chats3`;
  document.body.classList.toggle('embed', ctx.embed);
  setConn('connecting');
  if (!(await load())) return;
  if (ctx.me.conversationId !== ctx.conversationId) {
    return endSession('Your session belongs to another conversation.');
  }
  setupLeave(!ctx.embed || ctx.config.embed.showLeave);
  setupCalls(!ctx.embed || ctx.config.embed.showCalls);
  enableComposer(true);
  connect(); // open the stream first so nothing falls between history and live events
  try {
    await loadLatest();
  } catch (err) {
    showNotice(err);
  }
  restoreOutbox();
  tellParent('ready');
}

init();
