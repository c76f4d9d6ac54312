// The room page: loads the session and the client configuration, then
// starts the modules under ./room/, each owning one feature. They share
// state through room/ctx.js and talk through the event bus (room/bus.js).
import { ctx, joinUrl, loadPage } from './room/ctx.js';
import { showNotice } from './room/notice.js';
import { connect, setConn } from './room/stream.js';
import { loadLatest } from './room/history.js';
import { enableComposer, focusComposer, restoreOutbox } from './room/composer.js';
import { markClosed } from './room/closed.js';
import { setupInvite, showTitle } from './room/identity.js';
import { setupCalls } from './room/calls.js';
import { endSession, setupLeave } from './room/leave.js';
import { tellParent } from './room/embed-bridge.js';
import './room/people.js';
import './room/reactions.js';
import './room/receipts.js';
import './room/edit.js';
import './room/upload.js';
import './room/search.js';
import './room/layout.js';
import './room/roving.js';

/** True once the session and configuration are in; otherwise ends or retries. */
async function load() {
  try {
    await loadPage();
    return true;
  } catch (err) {
    if (err.status === 401) {
      // Someone opening the room's address without a session: the join form for this room.
      if (!ctx.embed) location.replace(joinUrl());
      else endSession('No session for this conversation.');
      return false;
    }
    setConn('offline');
    showNotice(err);
    setTimeout(init, 5000); // e.g. the network is down: try again
    return false;
  }
}

async function init() {
  showTitle();
  document.body.classList.toggle('embed', ctx.embed);
  setConn('connecting');
  if (!(await load())) return;
  if (ctx.me.conversationId !== ctx.conversationId) {
    return endSession('Your session belongs to another conversation.');
  }
  showTitle();
  setupLeave(!ctx.embed || ctx.config.embed.showLeave);
  setupCalls(!ctx.embed || ctx.config.embed.showCalls);
  if (ctx.conversation.status === 'closed') markClosed(); else enableComposer(true);
  setupInvite();
  connect(); // open the stream first so nothing falls between history and live events
  try {
    await loadLatest();
  } catch (err) {
    showNotice(err);
  }
  restoreOutbox();
  if (!ctx.closed) focusComposer();
  tellParent('ready');
}

init();
