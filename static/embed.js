/*!
 * chats3 embed loader: one tag on the integrator's page puts a chats3 room on it.
 *
 *   <script src="https://chat.example.com/static/embed.js"
 *           data-ticket-url="/chat-ticket" async></script>
 *
 * On every page load it POSTs to the integrator's own ticket endpoint (same
 * origin as the page, its cookies sent) for a fresh signed ticket, answered as
 * JSON `{"ticket": "<the ticket's JSON text>", "signature": "<base64url>"}`, and
 * opens the room with it in an iframe: so a reload never replays a nonce.
 *
 * data-ticket-url  the endpoint (required for the tag to start by itself)
 * data-target      a CSS selector: render inline in that element (else a launcher bubble)
 * data-title       the panel's title and the frame's accessible name (default "Chat")
 * data-position    "right" (default) or "left": the launcher's corner
 * data-open        "true": start with the panel open
 * data-height      the inline frame's height (CSS length, default "600px")
 *
 * Or from JS: `Chats3Embed.mount({ticketUrl, target, title, position, open, height})`
 * answers a widget with open(), close(), toggle(), leave(), reload(). Events are
 * dispatched on `window` as `chats3:ready`, `chats3:unread` (detail.count),
 * `chats3:left`, `chats3:session-ended` and `chats3:error` (detail.reason),
 * each with detail.widget.
 *
 * Messages with the frame go only to and from the service's origin (the origin
 * this file was loaded from) and only from the frame's own window.
 */
(() => {
  'use strict';
  const script = document.currentScript;
  if (!script || window.Chats3Embed) return;

  /** The service: where this file came from, and the only origin we talk to. */
  const CHAT_ORIGIN = new URL(script.src, location.href).origin;
  /** How long the ticket endpoint may take. */
  const TICKET_TIMEOUT_MS = 10000;
  /** How long the room may take to say it is ready once it has a ticket. */
  const READY_TIMEOUT_MS = 20000;
  /** The service refuses longer tickets and signatures. */
  const MAX_TICKET = 8192;
  const MAX_SIGNATURE = 200;
  /** Bounds on what we show of a text the frame sends. */
  const MAX_SHOWN = 300;

  /** What we tell the person when we cannot reach the chat ourselves. */
  const OWN_FAILURES = {
    'ticket-endpoint': ['The chat could not be opened', 'This site could not start a chat just now. Try again in a moment.'],
    timeout: ['The chat is taking too long', 'The connection may be slow or down. Try again in a moment.'],
    'session-ended': ['Your chat session ended', 'Start again to continue the conversation.'],
  };

  const STYLE = `
:host { all: initial; display: block; }
* { box-sizing: border-box; }
.root { font: 15px/1.4 system-ui, sans-serif; color: #1d2329; --accent: #2457c5; --surface: #fff; --border: #c8ced6; }
@media (prefers-color-scheme: dark) { .root { color: #e6e9ed; --accent: #7aa2ff; --surface: #1d2126; --border: #3a424c; } }
.root.launcher { position: fixed; z-index: 2147483000; bottom: 16px; right: 16px; display: flex; flex-direction: column; align-items: flex-end; gap: 12px; pointer-events: none; }
.launcher .bubble, .launcher.open .panel { pointer-events: auto; } /* the collapsed panel's space stays the page's */
.root.launcher.left { right: auto; left: 16px; align-items: flex-start; }
.root.inline { display: block; height: 100%; }
.panel { display: flex; flex-direction: column; background: var(--surface); border: 1px solid var(--border); border-radius: 12px; overflow: hidden; }
.launcher .panel { width: min(400px, calc(100vw - 32px)); height: min(640px, calc(100vh - 112px)); box-shadow: 0 8px 32px rgba(0,0,0,.25); transition: opacity .15s, transform .15s; }
.launcher:not(.open) .panel { visibility: hidden; opacity: 0; transform: translateY(12px); pointer-events: none; }
.inline .panel { height: 100%; }
.bar { display: flex; align-items: center; justify-content: space-between; gap: 8px; padding: 6px 6px 6px 14px; border-bottom: 1px solid var(--border); }
.inline .bar { display: none; }
.title { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.stage { position: relative; flex: 1; min-height: 0; }
iframe { display: block; width: 100%; height: 100%; border: 0; background: var(--surface); }
.status { position: absolute; inset: 0; display: flex; flex-direction: column; align-items: center; justify-content: center; gap: 10px; padding: 24px; text-align: center; background: var(--surface); }
.status[hidden] { display: none; }
.status h2 { font-size: 17px; margin: 0; }
.status p { margin: 0; max-width: 32ch; }
button { font: inherit; color: inherit; cursor: pointer; }
button:focus-visible { outline: 3px solid #e06c00; outline-offset: 2px; }
.close { width: 44px; height: 44px; border: 0; border-radius: 8px; background: transparent; font-size: 22px; line-height: 1; }
.retry { min-height: 44px; padding: 8px 20px; border: 0; border-radius: 8px; background: var(--accent); color: #fff; font-weight: 600; }
@media (prefers-color-scheme: dark) { .retry { color: #10141a; } }
.bubble { position: relative; width: 60px; height: 60px; border: 0; border-radius: 50%; background: var(--accent); color: #fff; box-shadow: 0 4px 16px rgba(0,0,0,.3); display: grid; place-items: center; }
@media (prefers-color-scheme: dark) { .bubble { color: #10141a; } }
.badge { position: absolute; top: -4px; right: -4px; min-width: 24px; height: 24px; padding: 0 6px; border-radius: 12px; background: #c62828; color: #fff; font: 700 13px/24px system-ui, sans-serif; border: 2px solid var(--surface); }
.badge[hidden] { display: none; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
@media (max-width: 480px) {
  .launcher.open { inset: 0; }
  .launcher.open .panel { width: 100vw; height: 100vh; height: 100dvh; border: 0; border-radius: 0; }
  .launcher.open .bubble { display: none; }
}
`;

  /** Builds an element of the shadow tree. */
  function el(tag, attrs = {}, text = '') {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text) node.textContent = text;
    return node;
  }

  /** A shadow root's styles, without an inline <style> where the host's CSP forbids one. */
  function style(root) {
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(STYLE);
      root.adoptedStyleSheets = [sheet];
    } catch {
      root.append(el('style', {}, STYLE));
    }
  }

  const clip = (value) => String(value ?? '').slice(0, MAX_SHOWN);

  class Widget {
    constructor(options) {
      if (!options || !options.ticketUrl) throw new Error('chats3 embed: ticketUrl is required');
      this.ticketUrl = new URL(options.ticketUrl, location.href).href;
      this.title = String(options.title || 'Chat').slice(0, 100);
      this.inline = !!options.target;
      this.isOpen = this.inline || !!options.open;
      this.frame = null;
      this.ready = false;
      this.readyTimer = 0;
      this.attempt = 0;
      this.build(options);
      this.onMessage = this.onMessage.bind(this);
      window.addEventListener('message', this.onMessage);
      this.reload();
    }

    build(options) {
      const target = this.inline
        ? (typeof options.target === 'string' ? document.querySelector(options.target) : options.target)
        : document.body;
      if (!target) throw new Error(`chats3 embed: no element ${options.target}`);
      this.host = el('div', { 'data-chats3-embed': '' });
      if (this.inline) this.host.style.height = options.height || '600px';
      const shadow = this.host.attachShadow({ mode: 'open' });
      style(shadow);
      const side = options.position === 'left' ? ' left' : '';
      this.root = el('div', { class: this.inline ? 'root inline' : `root launcher${side}` });
      this.panel = el('section', { class: 'panel', id: 'panel', 'aria-label': this.title });
      const bar = el('div', { class: 'bar' });
      this.closeBtn = el('button', { type: 'button', class: 'close', 'aria-label': `Close ${this.title}` }, '×');
      this.closeBtn.addEventListener('click', () => this.close());
      bar.append(el('span', { class: 'title' }, this.title), this.closeBtn);
      this.stage = el('div', { class: 'stage' });
      this.status = el('div', { class: 'status', role: 'status' });
      this.statusTitle = el('h2');
      this.statusText = el('p');
      this.retryBtn = el('button', { type: 'button', class: 'retry' }, 'Try again');
      this.retryBtn.addEventListener('click', () => this.reload());
      this.status.append(this.statusTitle, this.statusText, this.retryBtn);
      this.stage.append(this.status);
      this.panel.append(bar, this.stage);
      this.panel.addEventListener('keydown', (e) => { if (e.key === 'Escape') this.close(); }); // in the panel's own controls; keys in the frame stay the room's
      this.root.append(this.panel);
      if (!this.inline) {
        this.bubble = el('button', { type: 'button', class: 'bubble', 'aria-controls': 'panel', 'aria-expanded': 'false' });
        this.bubble.innerHTML = '<svg aria-hidden="true" viewBox="0 0 24 24" width="28" height="28"><path fill="currentColor" d="M4 5.5A2.5 2.5 0 0 1 6.5 3h11A2.5 2.5 0 0 1 20 5.5v8a2.5 2.5 0 0 1-2.5 2.5H10l-4.2 3.6A.5.5 0 0 1 5 19.2V16h1.5H6.5A2.5 2.5 0 0 1 4 13.5z"/></svg>';
        this.bubbleLabel = el('span', { class: 'sr' });
        this.badge = el('span', { class: 'badge', 'aria-hidden': 'true', hidden: '' });
        this.bubble.append(this.bubbleLabel, this.badge);
        this.bubble.addEventListener('click', () => this.toggle());
        this.root.append(this.bubble);
      }
      shadow.append(this.root);
      target.append(this.host);
      this.setUnread(0);
      this.paintOpen();
    }

    /** Tells the integrator's page (events on window). */
    emit(type, detail = {}) {
      window.dispatchEvent(new CustomEvent(`chats3:${type}`, { detail: { widget: this, ...detail } }));
    }

    /** Shows the loading or failure state over the frame. */
    showStatus(title, text, retry) {
      this.statusTitle.textContent = title;
      this.statusText.textContent = text;
      this.retryBtn.hidden = !retry;
      this.status.hidden = false;
      if (retry && this.isOpen && this.root.getRootNode().activeElement) this.retryBtn.focus(); // focus was in the widget
    }

    /** A failure: the friendly text, a retry, no frame left behind. */
    fail(reason, title, text) {
      clearTimeout(this.readyTimer);
      this.ready = false;
      this.dropFrame();
      this.showStatus(clip(title), clip(text), true);
      this.emit('error', { reason });
    }

    failOwn(reason) {
      const [title, text] = OWN_FAILURES[reason];
      this.fail(reason, title, text);
    }

    dropFrame() {
      if (this.frame) this.frame.remove();
      this.frame = null;
    }

    /** A fresh ticket from the integrator's endpoint, or null. */
    async fetchTicket() {
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), TICKET_TIMEOUT_MS);
      try {
        const res = await fetch(this.ticketUrl, {
          method: 'POST',
          credentials: 'same-origin',
          cache: 'no-store',
          headers: { Accept: 'application/json' },
          signal: abort.signal,
        });
        if (!res.ok) return null;
        const body = await res.json();
        const { ticket, signature } = body || {};
        if (typeof ticket !== 'string' || typeof signature !== 'string') return null;
        if (!ticket || ticket.length > MAX_TICKET || !signature || signature.length > MAX_SIGNATURE) return null;
        return { ticket, signature };
      } catch {
        return null;
      } finally {
        clearTimeout(timer);
      }
    }

    /** Opens the room with a fresh ticket (on load, and on every retry). */
    async reload() {
      const attempt = ++this.attempt;
      clearTimeout(this.readyTimer);
      this.ready = false;
      this.dropFrame();
      this.setUnread(0);
      this.showStatus('Connecting to the chat…', '', false);
      const signed = await this.fetchTicket();
      if (attempt !== this.attempt) return; // a newer reload won
      if (!signed) return this.failOwn('ticket-endpoint');
      const src = new URL('/embed', CHAT_ORIGIN);
      src.searchParams.set('ticket', signed.ticket);
      src.searchParams.set('signature', signed.signature);
      // A new frame each time: navigating the old one would add entries to the page's history.
      const frame = el('iframe', {
        title: this.title,
        allow: 'camera; microphone; display-capture; autoplay; clipboard-write',
        referrerpolicy: 'origin',
      });
      frame.src = src.href;
      this.frame = frame;
      this.stage.prepend(frame);
      this.readyTimer = setTimeout(() => { if (attempt === this.attempt && !this.ready) this.failOwn('timeout'); }, READY_TIMEOUT_MS);
    }

    /** Only the frame's own window, from the service's origin, is heard. */
    onMessage(e) {
      if (!this.frame || e.source !== this.frame.contentWindow || e.origin !== CHAT_ORIGIN) return;
      const d = e.data;
      if (!d || typeof d !== 'object' || d.source !== 'chats3') return;
      switch (d.type) {
        case 'ready':
          clearTimeout(this.readyTimer);
          this.ready = true;
          this.status.hidden = true;
          this.tellFrame({ type: 'visibility', visible: this.isOpen });
          this.emit('ready', { conversationId: clip(d.conversationId) });
          break;
        case 'unread':
          this.setUnread(d.count);
          break;
        case 'left':
          this.emit('left');
          break;
        case 'session-ended':
          this.failOwn('session-ended');
          this.emit('session-ended');
          break;
        case 'error':
          this.fail(clip(d.reason) || 'unavailable', d.title || 'The chat could not be opened', d.text || 'Try again in a moment.');
          break;
        default:
          break;
      }
    }

    tellFrame(message) {
      if (this.frame?.contentWindow) this.frame.contentWindow.postMessage(message, CHAT_ORIGIN);
    }

    setUnread(count) {
      const n = Number.isSafeInteger(count) && count > 0 ? Math.min(count, 999) : 0;
      this.unread = n;
      if (this.badge) {
        this.badge.textContent = n > 99 ? '99+' : String(n);
        this.badge.hidden = n === 0;
        this.bubbleLabel.textContent = `${this.isOpen ? 'Close' : 'Open'} ${this.title}${n ? `, ${n} unread` : ''}`;
      }
      this.emit('unread', { count: n });
    }

    paintOpen() {
      this.root.classList.toggle('open', this.isOpen);
      if (this.bubble) {
        this.bubble.setAttribute('aria-expanded', String(this.isOpen));
        this.setUnread(this.isOpen ? 0 : this.unread);
      }
      if (this.ready) this.tellFrame({ type: 'visibility', visible: this.isOpen });
    }

    open() {
      if (this.isOpen) return;
      this.isOpen = true;
      this.paintOpen();
      if (this.frame && this.ready) this.frame.focus();
      else if (!this.retryBtn.hidden) this.retryBtn.focus();
      else this.closeBtn.focus();
    }

    close() {
      if (this.inline || !this.isOpen) return;
      this.isOpen = false;
      this.paintOpen();
      this.bubble.focus();
    }

    toggle() {
      if (this.isOpen) this.close();
      else this.open();
    }

    /** Asks the room to leave the conversation (it answers `chats3:left`). */
    leave() {
      this.tellFrame({ type: 'leave' });
    }
  }

  window.Chats3Embed = {
    /** Starts a widget; see the comment at the top of this file. */
    mount: (options) => new Widget(options),
    /** The widget the tag's data attributes started, if any. */
    widget: null,
  };

  const data = script.dataset;
  if (data.ticketUrl) {
    const start = () => {
      window.Chats3Embed.widget = new Widget({
        ticketUrl: data.ticketUrl,
        target: data.target,
        title: data.title,
        position: data.position,
        open: data.open === 'true',
        height: data.height,
      });
    };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start, { once: true });
    else start();
  }
})();
