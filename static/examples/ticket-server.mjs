// Example integrator site: serves integrator.html and a ticket endpoint that
// signs a fresh chats3 ticket on every call (Node 18+, no dependencies).
//
//   CHATS3_URL=http://localhost:3000 INTEGRATOR_ID=shop INTEGRATOR_SECRET=a-long-random-secret \
//   CONVERSATION_ID=support-42 PORT=4000 node static/examples/ticket-server.mjs
//
// then open http://localhost:4000/. The chats3 config needs the integrator
// with allowed_origins = ["http://localhost:4000"] (SITE_ORIGIN) and a
// conversation CONVERSATION_ID (or auto_create = true).
// A real site decides the user from its own login; this demo gives each
// browser a random guest id in a cookie.
import { createHmac, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';

const env = process.env;
const PORT = Number(env.PORT || 4000);
const CHATS3_URL = (env.CHATS3_URL || 'http://localhost:3000').replace(/\/+$/, '');
const SITE_ORIGIN = env.SITE_ORIGIN || `http://localhost:${PORT}`;
const INTEGRATOR_ID = env.INTEGRATOR_ID || 'shop';
const SECRET = env.INTEGRATOR_SECRET || 'a-long-random-secret'; // stays on the server
const CONVERSATION_ID = env.CONVERSATION_ID || 'support-42';
const FILES = { '/integrator.css': 'text/css', '/integrator.js': 'text/javascript' };

/** A ticket for this user, signed as sent: base64url(HMAC-SHA256(secret, text)). */
function signTicket(userId) {
  const now = Date.now();
  const ticket = JSON.stringify({
    integratorId: INTEGRATOR_ID,
    conversationId: CONVERSATION_ID,
    userId,
    displayName: `Guest ${userId.slice(0, 4)}`,
    role: 'user',
    origin: SITE_ORIGIN,
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 5 * 60_000).toISOString(),
    nonce: randomUUID(), // a new one every call: tickets are single-use
  });
  return { ticket, signature: createHmac('sha256', SECRET).update(ticket).digest('base64url') };
}

const guestOf = (req) => /(?:^|;\s*)guest=([0-9a-f-]{36})/.exec(req.headers.cookie || '')?.[1];
const escapeAttr = (s) => s.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`);

createServer(async (req, res) => {
  const { pathname } = new URL(req.url, SITE_ORIGIN);
  if (req.method === 'POST' && pathname === '/ticket') {
    // Only our own pages may ask (a cross-site form could POST here too).
    const guest = guestOf(req);
    if (!guest || (req.headers.origin && req.headers.origin !== SITE_ORIGIN)) {
      res.writeHead(403).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify(signTicket(guest)));
    return;
  }
  if (req.method !== 'GET') { res.writeHead(405).end(); return; }
  if (pathname === '/' || pathname === '/integrator.html') {
    const page = (await readFile(new URL('integrator.html', import.meta.url), 'utf8'))
      .replaceAll('{{CHATS3_URL}}', escapeAttr(CHATS3_URL));
    const headers = { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' };
    if (!guestOf(req)) headers['Set-Cookie'] = `guest=${randomUUID()}; Path=/; HttpOnly; SameSite=Lax`;
    res.writeHead(200, headers).end(page);
    return;
  }
  if (FILES[pathname]) {
    res.writeHead(200, { 'Content-Type': FILES[pathname] });
    res.end(await readFile(new URL(pathname.slice(1), import.meta.url)));
    return;
  }
  res.writeHead(404).end();
}).listen(PORT, '127.0.0.1', () => console.log(`example integrator on ${SITE_ORIGIN}`));
