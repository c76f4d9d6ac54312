// Example integrator page: embeds a chats3 room and can ask it to leave.
//
// Your server builds the embed URL: a ticket (JSON text with integratorId,
// conversationId, userId, displayName, role, origin = this page's origin,
// issuedAt, expiresAt, nonce) signed with base64url(HMAC-SHA256(secret,
// ticket)), as `<chats3>/embed?ticket=<urlencoded>&signature=<sig>`. Never
// put the secret in browser code. This demo takes the finished URL from
// `?src=` (or from the form) and shows it in the iframe.
//
// Messages: we send {type:"leave"} to the room; the room sends us
// {source:"chats3", type:"ready"|"left"|"session-ended", conversationId}.
(() => {
  const frame = document.getElementById('chat-frame');
  const leaveBtn = document.getElementById('leave-chat');
  const status = document.getElementById('chat-status');
  const form = document.getElementById('src-form');
  const input = document.getElementById('src-input');
  let chatOrigin = null;

  function open(url) {
    let u;
    try { u = new URL(url, location.href); } catch { u = null; }
    if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) {
      status.textContent = 'That is not an http(s) URL.';
      return;
    }
    chatOrigin = u.origin; // only this origin may talk to us, and only it gets our messages
    frame.src = u.href;
    frame.hidden = false;
    form.hidden = true;
    leaveBtn.disabled = false;
    status.textContent = 'Loading the chat…';
  }

  leaveBtn.addEventListener('click', () => {
    if (!chatOrigin || !frame.contentWindow) return;
    frame.contentWindow.postMessage({ type: 'leave' }, chatOrigin);
    status.textContent = 'Leaving…';
  });

  window.addEventListener('message', (e) => {
    if (e.origin !== chatOrigin || e.source !== frame.contentWindow) return;
    const d = e.data;
    if (!d || typeof d !== 'object' || d.source !== 'chats3') return;
    if (d.type === 'ready') status.textContent = 'Chat connected.';
    if (d.type === 'left' || d.type === 'session-ended') {
      status.textContent = d.type === 'left' ? 'You left the chat.' : 'The chat session ended.';
      leaveBtn.disabled = true;
    }
  });

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    open(input.value.trim());
  });

  const src = new URLSearchParams(location.search).get('src');
  if (src) open(src);
  else {
    form.hidden = false;
    input.focus();
  }
})();
