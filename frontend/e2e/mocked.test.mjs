// Browser tests of the chat and alert screens against a hand-written fake
// of the server (REST through page routes, /ws through Playwright's
// WebSocket routing). They pin down client behaviour the real-server tests
// cannot force on demand: redelivered ids, history paging, a server that
// goes away while messages are typed, endpoints that do not exist yet. The
// built dist/ is served by a small static server; no Go binary is needed.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { CHROMIUM, FRONTEND_DIR, waitFor } from './harness.mjs';

const DIST = path.join(FRONTEND_DIR, 'dist');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };

let server;
let baseURL;
let browser;

/** Serves dist/ like the Go server does: files, else index.html. */
async function startStatic() {
  server = http.createServer(async (req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    let file = path.join(DIST, path.normalize(p).replace(/^(\.\.[/\\])+/, ''));
    if (p === '/' || !path.extname(p)) file = path.join(DIST, 'index.html');
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  baseURL = `http://127.0.0.1:${server.address().port}`;
}

const iso = (ms) => new Date(ms).toISOString();

/** The fake server: rooms, messages, alerts, connections. One per test. */
class FakeServer {
  constructor({ roomsMissing = false } = {}) {
    this.roomsMissing = roomsMissing;
    this.conns = new Set();
    this.received = [];
    this.acks = [];
    this.accepting = true;
    this.serverId = 1000;
    const t0 = Date.now() - 3600_000;
    this.rooms = new Map([
      ['general', { room: 'general', kind: 'chat', messages: [] }],
      ['alerts', { room: 'alerts', kind: 'alerts', messages: [] }],
      ['ops', { room: 'ops', kind: 'chat', messages: [] }],
    ]);
    for (let i = 1; i <= 60; i++) {
      this.rooms.get('general').messages.push({ id: i, room: 'general', user: i % 2 ? 'carol' : 'dave', content: `old message ${i}`, ts: iso(t0 + i * 1000) });
    }
    this.alerts = new Map();
  }

  roomList() {
    const online = new Set([...this.conns].map((c) => c.user));
    return [...this.rooms.values()].map((r) => ({ room: r.room, kind: r.kind, members: 4, online: online.size }));
  }

  send(conn, msg) {
    conn.route.send(JSON.stringify(msg));
  }

  broadcast(msg, except) {
    for (const c of this.conns) if (c !== except) this.send(c, msg);
  }

  /** Sends an acked message (top-level id) to every connection. */
  deliver(type, data, id = ++this.serverId) {
    for (const c of this.conns) this.send(c, { type, id, data });
    return id;
  }

  async attach(context) {
    await context.route('**/api/**', (route) => this.rest(route));
    await context.routeWebSocket(/\/ws$/, (ws) => this.connect(ws));
  }

  rest(route) {
    const req = route.request();
    const url = new URL(req.url());
    const p = url.pathname;
    const json = (body, status = 200) => route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(body) });
    if (p === '/api/login') {
      const { username, password } = JSON.parse(req.postData() ?? '{}');
      if (password === 'wrong') return json({ error: { code: 'unauthorized', message: 'bad credentials' } }, 401);
      return json({ token: 'tok-' + username, expires_at: iso(Date.now() + 3600_000), user: username, role: username === 'vic' ? 'viewer' : 'operator' });
    }
    const user = (req.headers()['authorization'] ?? '').replace('Bearer tok-', '');
    if (!user) return json({ error: { code: 'unauthorized', message: 'no token' } }, 401);
    if (p === '/api/me') return json({ user, role: 'operator' });
    if (p === '/api/sensors') {
      return json([{ sensor_id: 's-1', metric: 'temperature', unit: '°C', first_seen: iso(Date.now() - 60_000), last_seen: iso(Date.now() - 1000), last_value: 21.5 }]);
    }
    if (/^\/api\/sensors\/[^/]+\/readings$/.test(p)) return json({ readings: [] });
    if (p === '/api/commands') return json({ commands: [] });
    if (p === '/api/rooms') return this.roomsMissing ? json({ error: { code: 'not_found', message: 'no route' } }, 404) : json({ rooms: this.roomList() });
    const m = /^\/api\/rooms\/([^/]+)\/messages$/.exec(p);
    if (m) {
      const room = this.rooms.get(decodeURIComponent(m[1]));
      if (!room) return json({ error: { code: 'not_found', message: 'no room' } }, 404);
      const before = Number(url.searchParams.get('before') ?? Infinity);
      const limit = Number(url.searchParams.get('limit') ?? 50);
      return json({ messages: room.messages.filter((x) => x.id < before).slice(-limit) });
    }
    if (p === '/api/alerts') {
      if (this.roomsMissing) return json({ error: { code: 'not_found', message: 'no route' } }, 404);
      const state = url.searchParams.get('state');
      return json({ alerts: [...this.alerts.values()].filter((a) => !state || a.state === state) });
    }
    const am = /^\/api\/alerts\/([^/]+)$/.exec(p);
    if (am) {
      const a = this.alerts.get(am[1]);
      if (!a) return json({ error: { code: 'not_found', message: 'no alert' } }, 404);
      return json({ alert: a, messages: this.rooms.get('alerts').messages.filter((x) => String(x.alert_id) === am[1]) });
    }
    return json({ error: { code: 'not_found', message: 'no route' } }, 404);
  }

  connect(route) {
    const conn = { route, user: null };
    route.onMessage((raw) => {
      const msg = JSON.parse(String(raw));
      this.received.push({ user: conn.user, msg });
      if (!conn.user) {
        if (msg.type !== 'auth' || !this.accepting) {
          route.close({ code: 4000, reason: 'not now' });
          return;
        }
        conn.user = msg.data.token.replace('tok-', '');
        this.conns.add(conn);
        this.send(conn, { type: 'auth_ok', data: { user: conn.user, role: conn.user === 'vic' ? 'viewer' : 'operator', expires_at: iso(Date.now() + 3600_000) } });
        return;
      }
      this.handle(conn, msg);
    });
    route.onClose(() => this.conns.delete(conn));
  }

  handle(conn, msg) {
    const reply = (type, data) => this.send(conn, { type, ref: msg.id, data });
    const error = (code, message) => this.send(conn, { type: 'error', ref: msg.id, data: { code, message } });
    const d = msg.data ?? {};
    switch (msg.type) {
      case 'ack':
        this.acks.push(msg.ref);
        return;
      case 'ping':
        return reply('pong');
      case 'typing':
        return this.broadcast({ type: 'user_typing', data: { room: d.room, user: conn.user } }, conn);
      case 'list_rooms':
        return reply('room_list', { rooms: this.roomList() });
      case 'join_room': {
        const room = this.rooms.get(d.room);
        if (!room) return error('not_found', `no room ${d.room}`);
        return reply('joined', { room: d.room, members: [{ user: conn.user, online: true }], history: room.messages.slice(-50) });
      }
      case 'create_room':
        if (this.rooms.has(d.room)) return error('conflict', 'name taken');
        this.rooms.set(d.room, { room: d.room, kind: 'chat', messages: [] });
        reply('room_created', { room: d.room });
        return this.broadcast({ type: 'room_list', data: { rooms: this.roomList() } });
      case 'chat_message': {
        const room = this.rooms.get(d.room);
        const m = { id: room.messages.length ? room.messages.at(-1).id + 1 : 1, room: d.room, user: conn.user, content: d.content.trim(), alert_id: d.alert_id ?? null, ts: iso(Date.now()) };
        room.messages.push(m);
        for (const c of this.conns) this.send(c, c === conn ? { type: 'chat_message', ref: msg.id, data: m } : { type: 'chat_message', data: m });
        return;
      }
      case 'direct_message': {
        const dm = { id: ++this.serverId, from: conn.user, to: d.to, content: d.content, ts: iso(Date.now()) };
        for (const c of this.conns) if (c.user === d.to || c.user === conn.user) this.send(c, { type: 'direct_message', id: dm.id, ref: c === conn ? msg.id : undefined, data: dm });
        return;
      }
      case 'alert_ack': {
        const a = this.alerts.get(String(d.alert_id));
        if (!a) return error('not_found', 'no alert');
        Object.assign(a, { state: 'acknowledged', acked_by: conn.user, updated_at: iso(Date.now()) });
        reply('alert', a);
        this.deliver('alert', a);
        return;
      }
      default:
        return error('unknown_type', `unknown message type "${msg.type}"`);
    }
  }

  addAlert(over = {}) {
    const a = {
      id: 7, sensor_id: 's-1', metric: 'temperature', kind: 'threshold', severity: 'critical', value: 99.5,
      limit_or_score: 60, state: 'open', opened_at: iso(Date.now() - 5000), updated_at: iso(Date.now() - 5000), count: 1,
      acked_by: null, resolved_by: null, resolved_at: null, ...over,
    };
    this.alerts.set(String(a.id), a);
    return a;
  }
}

async function openAs(fake, user, viewport = { width: 1366, height: 768 }) {
  const context = await browser.newContext({ viewport });
  await fake.attach(context);
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.__errors = [];
  page.on('pageerror', (e) => page.__errors.push(e.message));
  await page.goto(baseURL + '/');
  await page.fill('#login-user', user);
  await page.fill('#login-password', 'pw');
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=conn-status][data-state=connected]');
  return page;
}

const msgText = (page, text) => page.locator('.messages .msg-text').filter({ hasText: text });

describe('dashboard against a fake server', { timeout: 180_000 }, () => {
  before(async () => {
    await startStatic();
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      timeout: 60_000,
    });
  });

  after(async () => {
    await browser?.close();
    server?.close();
  });

  it('chats between two users: once each, text only, typing, history, slash commands', { timeout: 60_000 }, async () => {
    const fake = new FakeServer();
    const alice = await openAs(fake, 'alice');
    const bob = await openAs(fake, 'bob');
    await alice.waitForSelector('.messages .msg-text:text-is("old message 60")');

    const evil = '<img src=x onerror="window.__pwned=1"> & <b>bold</b>';
    await alice.fill('#chat-input', evil);
    await alice.press('#chat-input', 'Enter');
    for (const p of [alice, bob]) {
      await msgText(p, 'onerror').first().waitFor();
      await sleep(300);
      assert.equal(await msgText(p, 'onerror').count(), 1);
      assert.equal(await p.locator('.messages img, .messages b').count(), 0, 'content must not become HTML');
      assert.equal(await p.evaluate(() => window.__pwned), undefined);
    }

    // Typing notice reaches the other user.
    await bob.type('#chat-input', 'hel');
    await alice.waitForSelector('.typing:has-text("bob is typing")');

    // History on scroll-up: the first page has 50 + the new message; scrolling loads 1–10.
    await alice.locator('.messages').evaluate((el) => (el.scrollTop = 0));
    await alice.waitForSelector('.messages .msg-text:text-is("old message 1")');
    const before = fake.received.filter((r) => r.msg.type === 'history');
    assert.equal(before.length, 0, 'history comes over REST');

    // /join, /rooms, /msg, /help.
    await alice.fill('#chat-input', '/join ops');
    await alice.press('#chat-input', 'Enter');
    await alice.waitForSelector('.view-tabs button[aria-current=true]:has-text("#ops")');
    await alice.fill('#chat-input', '/rooms');
    await alice.press('#chat-input', 'Enter');
    await alice.waitForSelector('.chat .notice:has-text("#ops")');
    await alice.fill('#chat-input', '/msg bob psst');
    await alice.press('#chat-input', 'Enter');
    await bob.waitForSelector('.view-tabs button:has-text("@alice") .unread');
    await bob.click('.view-tabs button:has-text("@alice")');
    await msgText(bob, 'psst').waitFor();
    assert.equal(await msgText(alice, 'psst').count(), 1);
    await alice.fill('#chat-input', '/frob');
    await alice.press('#chat-input', 'Enter');
    await alice.waitForSelector('.chat .notice.error:has-text("Unknown command /frob")');
    // The DM was delivered with an id: both clients acked it.
    await waitFor('acks of the direct message', () => fake.acks.length >= 2, { timeoutMs: 5000 });
    await alice.screenshot({ path: '/tmp/watchroom-mock-chat.png' });
    assert.deepEqual([...alice.__errors, ...bob.__errors], []);
  });

  it('announces, de-duplicates, acknowledges and discusses an alert', { timeout: 60_000 }, async () => {
    const fake = new FakeServer();
    const bob = await openAs(fake, 'bob');
    const a = fake.addAlert();
    fake.deliver('alert', a, 500);
    fake.deliver('alert', a, 500); // redelivered: same id
    const item = bob.locator('.alert-item[data-alert-id="7"]');
    await item.waitFor();
    assert.equal(await bob.locator('.alert-item').count(), 1);
    await waitFor('title badge', async () => (await bob.title()) === '(1) Watchroom');
    assert.match((await bob.locator('li.tile[data-sensor="s-1"]').getAttribute('class')) ?? '', /tone-critical/);
    await waitFor('both deliveries acked', () => fake.acks.filter((x) => x === 500).length === 2, { timeoutMs: 5000 });
    await bob.screenshot({ path: '/tmp/watchroom-mock-alert.png' });

    await item.locator('button:text-is("Acknowledge")').click();
    await waitFor('acknowledged', async () => (await item.getAttribute('data-state')) === 'acknowledged');
    await item.locator(':text("ack\'d by bob")').waitFor();
    assert.equal(await bob.title(), 'Watchroom', 'looking at the panel clears the badge');

    await item.locator('button:text-is("Discuss")').click();
    await bob.waitForSelector('.chat-head .chip:has-text("alert #7")');
    await bob.fill('#chat-input', 'on it');
    await bob.press('#chat-input', 'Enter');
    await msgText(bob, 'on it').waitFor();
    const sent = fake.received.find((r) => r.msg.type === 'chat_message');
    assert.deepEqual(sent.msg.data, { room: 'alerts', content: 'on it', alert_id: 7 });
    assert.deepEqual(bob.__errors, []);
  });

  it('queues messages typed while the server is away and sends them once after re-auth', { timeout: 90_000 }, async () => {
    const fake = new FakeServer();
    const alice = await openAs(fake, 'alice');
    await alice.waitForSelector('.messages .msg-text:text-is("old message 60")');
    fake.accepting = false;
    for (const c of fake.conns) await c.route.close({ code: 1001, reason: 'restart' });
    await alice.waitForSelector('[data-testid=conn-status][data-state=reconnecting]');
    await alice.waitForSelector('.stale-banner');
    await alice.fill('#chat-input', 'typed offline 1');
    await alice.press('#chat-input', 'Enter');
    await alice.fill('#chat-input', 'typed offline 2');
    await alice.press('#chat-input', 'Enter');
    assert.equal(await alice.locator('.msg.queued').count(), 2);
    // While away, a message from someone else lands in storage only.
    const general = fake.rooms.get('general');
    general.messages.push({ id: 61, room: 'general', user: 'carol', content: 'missed while away', ts: iso(Date.now()) });

    fake.accepting = true;
    await alice.click('.conn button:text-is("Retry now")').catch(() => {});
    await alice.waitForSelector('[data-testid=conn-status][data-state=connected]', { timeout: 40_000 });
    await msgText(alice, 'typed offline 2').waitFor();
    await msgText(alice, 'missed while away').waitFor(); // reloaded over REST on reconnect
    await sleep(500);
    const texts = await alice.locator('.messages .msg-text').allTextContents();
    assert.equal(texts.filter((t) => t === 'typed offline 1').length, 1);
    assert.equal(texts.filter((t) => t === 'typed offline 2').length, 1);
    assert.ok(texts.indexOf('typed offline 1') < texts.indexOf('typed offline 2'), 'sent in order');
    assert.equal(await alice.locator('.msg.queued').count(), 0);
    assert.deepEqual(alice.__errors, []);
  });

  it('keeps the session across a page reload, even while /api/me fails', { timeout: 30_000 }, async () => {
    const fake = new FakeServer();
    const page = await openAs(fake, 'alice');
    await page.context().route('**/api/me', (r) => r.fulfill({ status: 503, body: 'down' }));
    await page.reload();
    await page.waitForSelector('[data-testid=conn-status][data-state=connected]');
    await page.waitForSelector('.who:has-text("alice")');
    assert.equal(await page.locator('#login-user').count(), 0);
    assert.deepEqual(page.__errors, []);
  });

  it('degrades gracefully when rooms and alerts are not on the server', { timeout: 30_000 }, async () => {
    const fake = new FakeServer({ roomsMissing: true });
    const page = await openAs(fake, 'alice');
    await page.waitForSelector('.chat-panel :text("Chat is not available on this server yet.")');
    await page.waitForSelector('.alerts-panel :text("Alerts are not available on this server yet.")');
    await page.waitForSelector('li.tile[data-sensor="s-1"]');
    assert.deepEqual(page.__errors, []);
  });

  it('sends a viewer back to reading only and a 401 back to the login screen', { timeout: 30_000 }, async () => {
    const fake = new FakeServer();
    fake.addAlert();
    const page = await openAs(fake, 'vic');
    await page.waitForSelector('.chat :text("Viewers can read but not post.")');
    await page.waitForSelector('.alert-item[data-alert-id="7"]');
    assert.equal(await page.locator('.alert-item button:text-is("Acknowledge")').count(), 0);
    // The token stops working: the next REST call answers 401.
    await page.context().route('**/api/sensors/**', (r) => r.fulfill({ status: 401, contentType: 'application/json', body: '{"error":{"code":"unauthorized","message":"expired"}}' }));
    await page.locator('li.tile[data-sensor="s-1"] button').click();
    await page.waitForSelector('#login-user');
    await page.waitForSelector('.login-card .notice:has-text("session has ended")');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('watchroom.token')), null);
  });
});
