// The room's identity: its title in the heading and the tab (the id when it
// has none, as for rooms Chats3 wrote), and the invite button that copies
// the room's join link, code included.
import { joinLink } from '../storage.js';
import { ctx } from './ctx.js';
import { $ } from './dom.js';
import { showNotice } from './notice.js';

const heading = $('room-title');
const inviteBtn = $('invite');
const inviteStatus = $('invite-status');

/** The name a room is shown by. */
export const roomName = () => ctx.conversation?.title || ctx.conversationId || 'Conversation';

/** Shows the room's name in the heading and the tab title. */
export function showTitle() {
  heading.textContent = roomName();
  heading.title = heading.textContent; // the heading may be cut short on a phone
  document.title = `${heading.textContent} · chats3`;
}

const inviteLink = () => joinLink(ctx.conversationId, ctx.conversation?.joinCode, location.origin);

let statusTimer = 0;
function say(text) {
  clearTimeout(statusTimer);
  inviteStatus.textContent = text;
  statusTimer = setTimeout(() => { inviteStatus.textContent = ''; }, 4000);
}

async function copyInvite() {
  const link = inviteLink();
  try {
    await navigator.clipboard.writeText(link);
    say('Join link copied');
  } catch {
    // No clipboard (e.g. plain http on another host): show it to copy by hand.
    showNotice(`Join link: ${link}`);
  }
}

/** Shows the invite button where people may invite (not in an embed, not when closed). */
export function setupInvite() {
  inviteBtn.hidden = ctx.embed || ctx.closed || !ctx.conversation?.joinCode;
  inviteBtn.addEventListener('click', copyInvite);
}
