// The room page: loads the session and configuration, then starts the
// modules under ./room/ (each owns one feature and talks through ctx.js).
import { api } from './api.js';
import { ctx, call, showNotice } from './room/ctx.js';
import { connect, setConn } from './room/stream.js';
import { loadLatest } from './room/history.js';
import { enableComposer, restoreOutbox } from './room/composer.js';
import { setupCalls } from './room/calls.js';
import { endSession, setupLeave, tellParent } from './room/leave.js';
import './room/people.js';
import './room/reactions.js';
import './room/receipts.js';
import './room/edit.js';
import './room/upload.js';
import './room/search.js';

/** Server settings for the page; an older server without the route gets the defaults. */
async function loadConfig() {
  try {
    const { details } = await api('/api/v1/client-config');
    if (Array.isArray(details?.iceServers)) ctx.config.iceServers = details.iceServers;
    if (details?.embed) Object.assign(ctx.config.embed, details.embed);
    if (details?.limits) Object.assign(ctx.config.limits, details.limits);
  } catch { /* defaults: no ICE servers, no leave/call buttons in an iframe */ }
}

async function loadSession() {
  try {
    ctx.me = (await call('/api/v1/session')).details;
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
  const [, ok] = await Promise.all([loadConfig(), loadSession()]);
  if (!ok) return;
  if (ctx.me.conversationId && ctx.conversationId && ctx.me.conversationId !== ctx.conversationId) {
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
