// The page /embed answers when a ticket cannot open the room: it tells the
// embedding page (embed.js shows a retry there), only at the origin the
// service found allowed, with the page's own friendly texts.
(() => {
  const main = document.querySelector('main[data-reason]');
  const host = main?.dataset.hostOrigin;
  if (!main || !host || window.parent === window) return;
  window.parent.postMessage({
    source: 'chats3',
    type: 'error',
    reason: main.dataset.reason,
    status: Number(main.dataset.status),
    title: main.querySelector('h1').textContent,
    text: main.querySelector('p').textContent,
  }, host);
})();
