// The narrow layout (phones): search and the participant list fold away
// behind header buttons so the messages get the screen; each button shows
// or hides its panel. On wider screens both panels are always shown and
// the buttons are hidden (CSS).
import { $ } from './dom.js';

const room = document.querySelector('main.room');

function toggler(buttonId, panelClass, focusId) {
  const btn = $(buttonId);
  btn.addEventListener('click', () => {
    const open = !room.classList.contains(panelClass);
    room.classList.toggle(panelClass, open);
    btn.setAttribute('aria-expanded', String(open));
    if (open && focusId) $(focusId).focus();
  });
}

toggler('toggle-search', 'show-search', 'search-input');
toggler('toggle-people', 'show-people', null);

// Escape in the search box folds the panel away again on a phone.
$('search-input').addEventListener('keydown', (e) => {
  if (e.key !== 'Escape' || e.target.value || !room.classList.contains('show-search')) return;
  room.classList.remove('show-search');
  $('toggle-search').setAttribute('aria-expanded', 'false');
  $('toggle-search').focus();
});

// The people button says how many are here.
new MutationObserver(() => {
  $('people-count-short').textContent = $('participant-count').textContent;
}).observe($('participant-count'), { childList: true, characterData: true, subtree: true });
