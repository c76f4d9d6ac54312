// Example integrator page: what the page may do beyond the one <script> tag,
// through embed.js's events and widget (`Chats3Embed.widget`).
(() => {
  const status = document.getElementById('chat-status');
  const leaveBtn = document.getElementById('leave-chat');
  let unread = 0;

  window.addEventListener('chats3:ready', () => {
    status.textContent = 'Chat connected.';
    leaveBtn.disabled = false;
  });
  window.addEventListener('chats3:unread', (e) => {
    unread = e.detail.count;
    document.title = `${unread ? `(${unread}) ` : ''}Example integrator · chats3 embed`;
  });
  window.addEventListener('chats3:left', () => {
    status.textContent = 'You left the chat.';
    leaveBtn.disabled = true;
  });
  window.addEventListener('chats3:session-ended', () => { leaveBtn.disabled = true; });
  window.addEventListener('chats3:error', (e) => {
    status.textContent = `The chat did not open (${e.detail.reason}).`;
    leaveBtn.disabled = true;
  });
  leaveBtn.addEventListener('click', () => {
    window.Chats3Embed?.widget?.leave();
    status.textContent = 'Leaving…';
  });
})();
