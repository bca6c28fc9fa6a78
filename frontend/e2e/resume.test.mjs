// Resume after a reconnect, end to end: the dashboard under load (a few
// hundred readings per second over MQTT, chat from another client), the
// server killed with SIGKILL and started again on the same port and
// database; the dashboard must then show exactly what the database holds,
// with no gap and no duplicate, without reloading over REST. And a resume
// the server refuses (resume_failed) makes the dashboard reload over REST.
// See docs/protocol.md, "Resuming after a reconnect" and "Thinning: gap".

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { login as loginAt, openPage, waitConnected } from './browser.mjs';
import { startStack, waitFor } from './harness.mjs';
import { Publisher } from './mqtt.mjs';

const SENSORS = ['rs-1', 'rs-2', 'rs-3', 'rs-4', 'rs-5'];
const METRIC = 'temperature';
/** Readings per second over all sensors. */
const RATE = 300;
const TICK_MS = 20;
const CHAT_PREFIX = 'load chat';

let stack;
let browser;
let pub;
const contexts = [];

/** Publishes RATE readings per second round-robin over SENSORS, ts strictly increasing, and remembers what it sent. */
class Load {
  constructor(publisher) {
    this.pub = publisher;
    this.seq = 0;
    this.lastTs = 0;
    this.last = new Map();
    this.count = new Map();
  }

  one(sensor = SENSORS[this.seq % SENSORS.length]) {
    this.seq++;
    const ts = Math.max(Date.now(), this.lastTs + 1);
    this.lastTs = ts;
    const value = 1 + (this.seq % 900) / 10;
    this.pub.publish(`sensors/${sensor}/${METRIC}`, JSON.stringify({ value, unit: '°C', ts: new Date(ts).toISOString() }));
    this.last.set(sensor, value);
    this.count.set(sensor, (this.count.get(sensor) ?? 0) + 1);
  }

  start() {
    const perTick = Math.round((RATE * TICK_MS) / 1000);
    this.timer = setInterval(() => {
      for (let i = 0; i < perTick; i++) this.one();
    }, TICK_MS);
  }

  /** Stops publishing and waits until the broker has every reading. */
  async stop() {
    clearInterval(this.timer);
    await this.pub.drain();
  }
}

async function newPage(user) {
  const page = await openPage(browser, contexts);
  // Every /api request and every resume answer, with the time it came.
  page.__api = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/api/')) page.__api.push({ at: Date.now(), path: u.pathname });
  });
  page.__resume = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => noteResume(page, String(f.payload))));
  if (user) await login(page, user);
  return page;
}

/** Records a frame that answers a resume (resumed, resume_failed, or the error of a server without resume). */
function noteResume(page, frame) {
  for (const type of ['resumed', 'resume_failed']) {
    if (frame.includes(`"type":"${type}"`)) page.__resume.push({ at: Date.now(), type, payload: frame.slice(0, 300) });
  }
  if (frame.includes('"type":"error"') && frame.includes('unknown_type')) page.__resume.push({ at: Date.now(), type: 'error', payload: frame.slice(0, 300) });
}

function login(page, user) {
  return loginAt(page, stack.baseURL, user);
}

function tile(page, sensor) {
  return page.locator(`li.tile[data-sensor="${sensor}"][data-metric="${METRIC}"]`);
}

async function tileValue(page, sensor) {
  return parseFloat((await tile(page, sensor).locator('[data-testid=tile-value]').textContent()) ?? '');
}

/** The stored readings of one series, oldest first (REST, as the server holds them). */
async function stored(sensor) {
  const from = new Date(Date.now() - 3600_000).toISOString();
  const to = new Date(Date.now() + 60_000).toISOString();
  const { status, body } = await stack.api('alice', 'GET', `/api/sensors/${sensor}/readings?metric=${METRIC}&from=${from}&to=${to}&limit=10000`);
  assert.equal(status, 200, JSON.stringify(body));
  return body.readings.map((r) => ({ t: Date.parse(r.ts), v: r.value })).sort((a, b) => a.t - b.t);
}

/** Every message of room general the server holds, oldest first. */
async function storedChat() {
  const out = [];
  let before = 0;
  for (;;) {
    const q = before ? `?limit=100&before=${before}` : '?limit=100';
    const { status, body } = await stack.api('alice', 'GET', `/api/rooms/general/messages${q}`);
    assert.equal(status, 200, JSON.stringify(body));
    out.unshift(...body.messages);
    if (body.messages.length < 100) return out;
    before = body.messages[0].id;
  }
}

/** The chat texts page shows in room general that start with CHAT_PREFIX, in order. */
async function shownChat(page) {
  const texts = await page.locator('.messages .msg-text').allTextContents();
  return texts.filter((t) => t.startsWith(CHAT_PREFIX));
}

/**
 * Another client posting to room general over its own WebSocket (in a
 * page of its own, so it is a real browser WebSocket), reconnecting while
 * the server is away.
 */
async function startChatter(page, token) {
  await page.goto(stack.baseURL + '/readyz');
  await page.evaluate(
    ({ token, prefix }) => {
      const st = { sent: 0, replies: 0, ok: 0, stop: false, ready: false };
      window.__chat = st;
      let ws;
      const connect = () => {
        ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws');
        ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', data: { token } }));
        ws.onmessage = (ev) => {
          const m = JSON.parse(ev.data);
          for (const x of m.type === 'batch' ? m.data : [m]) {
            if (x.type === 'auth_ok') st.ready = true;
            if (x.ref && String(x.ref).startsWith('c')) {
              st.replies++;
              if (x.type === 'chat_message_sent') st.ok++;
            }
          }
        };
        ws.onclose = () => {
          // Requests in flight on a dead connection get no reply.
          st.replies = st.sent;
          st.ready = false;
          if (!st.stop) setTimeout(connect, 300);
        };
      };
      connect();
      window.__chatTimer = setInterval(() => {
        if (!st.ready || st.stop) return;
        const id = 'c' + ++st.sent;
        ws.send(JSON.stringify({ type: 'chat_message', id, data: { room: 'general', content: `${prefix} ${id}` } }));
      }, 150);
    },
    { token, prefix: CHAT_PREFIX },
  );
}

const chatState = (page) => page.evaluate(() => ({ ...window.__chat }));

describe('resume after a server crash', { timeout: 600_000 }, () => {
  before(async () => {
    stack = await startStack({ sensors: 0 });
    browser = await stack.launchBrowser();
    pub = await Publisher.connect(stack.mqttPort);
  });

  after(async () => {
    await pub?.close().catch(() => {});
    for (const c of contexts) await c.close().catch(() => {});
    if (stack) await stack.stop();
  });

  it('shows every reading and message after kill -9 and restart, without reloading', { timeout: 240_000 }, async () => {
    const load = new Load(pub);
    for (const s of SENSORS) load.one(s);
    await pub.drain();

    const grid = await newPage('alice');
    await waitFor('a tile per sensor', async () => (await grid.locator('li.tile').count()) >= SENSORS.length);
    const detail = await newPage('alice');
    await tile(detail, 'rs-1').locator('button').click();
    await detail.waitForSelector('.detail .chart[data-points]');
    const chatter = await newPage();
    await startChatter(chatter, await stack.token('bob'));

    load.start();
    try {
      // Flowing: the chart grows, chat arrives.
      const p0 = Number(await detail.locator('.detail .chart').getAttribute('data-points'));
      await waitFor('the chart to grow', async () => Number(await detail.locator('.detail .chart').getAttribute('data-points')) > p0 + 100);
      await waitFor('chat from bob on the grid page', async () => (await shownChat(grid)).length >= 5);

      const killedAt = Date.now();
      await stack.killServer();
      for (const p of [grid, detail]) await p.waitForSelector('[data-testid=conn-status]:not([data-state=connected])', { timeout: 20_000 });
      // Readings keep coming while the server is down (the broker queues them for its session).
      const seqDown = load.seq;
      await waitFor('readings published while the server is down', async () => load.seq >= seqDown + RATE);
      await stack.startServer();
      for (const p of [grid, detail]) await waitConnected(p, 45_000);
      await waitFor('both pages answered on their resume', async () => grid.__resume.length > 0 && detail.__resume.length > 0, {
        timeoutMs: 30_000,
      });
      for (const p of [grid, detail]) {
        assert.deepEqual(
          p.__resume.map((r) => r.type),
          ['resumed'],
          `resume answers: ${JSON.stringify(p.__resume)}`,
        );
      }
      // Some more chat and readings on the new server.
      const okAfter = (await chatState(chatter)).ok;
      await waitFor('chat after the restart', async () => (await chatState(chatter)).ok >= okAfter + 5, { timeoutMs: 20_000 });
      await chatter.evaluate(() => {
        window.__chat.stop = true;
      });
      await waitFor('every chat request answered', async () => {
        const st = await chatState(chatter);
        return st.replies >= st.sent;
      });

      // No REST reload after the resume: no sensor list, alerts or room
      // messages. The room list itself (`/api/rooms`, members and who is
      // online now) is current state, not history, and is read on every
      // connect; resume does not replay presence.
      for (const p of [grid, detail]) {
        const reloads = p.__api.filter(
          (r) => r.at >= killedAt && (r.path === '/api/sensors' || r.path === '/api/alerts' || r.path.startsWith('/api/rooms/')),
        );
        assert.deepEqual(reloads, [], 'REST reloads after a resumed reconnect');
      }
    } finally {
      await load.stop();
    }

    // The database holds every published reading.
    for (const s of SENSORS) {
      await waitFor(`${s}: all ${load.count.get(s)} readings stored`, async () => (await stored(s)).length === load.count.get(s), {
        timeoutMs: 30_000,
        intervalMs: 500,
      });
    }
    const rows = await stored('rs-1');

    // Tiles: the latest value of every sensor.
    for (const s of SENSORS) {
      await waitFor(`tile ${s} shows ${load.last.get(s)}`, async () => Math.abs((await tileValue(grid, s)) - load.last.get(s)) < 0.005);
    }
    // The detail chart: every stored point of rs-1, once each.
    const chart = detail.locator('.detail .chart');
    const want = { points: String(rows.length), first: new Date(rows[0].t).toISOString(), last: new Date(rows[rows.length - 1].t).toISOString() };
    try {
      await waitFor('the chart to hold every stored reading', async () => (await chart.getAttribute('data-points')) === want.points, {
        timeoutMs: 20_000,
      });
    } catch (err) {
      throw new Error(`${err.message}: chart ${await chart.getAttribute('data-points')} points, stored ${rows.length}`);
    }
    assert.equal(await chart.getAttribute('data-first'), want.first);
    assert.equal(await chart.getAttribute('data-last'), want.last);

    // Chat: every stored message from bob, once each, in order.
    const wantChat = (await storedChat()).map((m) => m.content).filter((c) => c.startsWith(CHAT_PREFIX));
    assert.ok(wantChat.length >= 10, `only ${wantChat.length} chat messages stored`);
    await waitFor('every chat message on the grid page', async () => (await shownChat(grid)).length >= wantChat.length);
    assert.deepEqual(await shownChat(grid), wantChat);

    for (const p of [grid, detail]) assert.deepEqual(p.__errors ?? [], [], 'uncaught errors in the page');
  });

  it('reloads over REST when the server cannot resume (resume_failed)', { timeout: 180_000 }, async () => {
    // A page whose WebSocket can be cut and kept cut while the server goes on.
    const page = await newPage();
    let blocked = false;
    const routes = [];
    await page.context().routeWebSocket(/\/ws$/, (ws) => {
      if (blocked) {
        ws.close({ code: 1011, reason: 'blocked by the test' });
        return;
      }
      const server = ws.connectToServer();
      // Routed sockets are not reported as page websockets: note the
      // resume answers here, forwarding every frame as it is.
      server.onMessage((m) => {
        noteResume(page, String(m));
        ws.send(m);
      });
      routes.push({ ws, server });
    });
    await login(page, 'alice');
    await waitFor('a tile per sensor', async () => (await page.locator('li.tile').count()) >= SENSORS.length);

    blocked = true;
    for (const r of routes.splice(0)) {
      r.server.close();
      r.ws.close({ code: 1011, reason: 'blocked by the test' });
    }
    await page.waitForSelector('[data-testid=conn-status]:not([data-state=connected])');

    // The server now replays at most 2 messages per stream: this page
    // misses more, so its resume fails with too_many.
    await stack.stopServer();
    await stack.startServer({ WATCHROOM_RESUME_MAX: '2' });
    const load = new Load(pub);
    for (let i = 0; i < 4; i++) for (const s of SENSORS) load.one(s);
    await pub.drain();
    for (const s of SENSORS) {
      await waitFor(`${s} stored its latest reading`, async () => {
        const rows = await stored(s);
        return rows.length > 0 && rows[rows.length - 1].v === load.last.get(s);
      });
    }
    const missed = `${CHAT_PREFIX} missed ${Date.now()}`;
    await postChat('bob', missed);

    const mark = Date.now();
    blocked = false;
    // Skip what is left of the backoff ("retry now"), when the page is
    // waiting. Only a shortcut: the button comes and goes with each attempt
    // (reconnecting, connecting), and when it is gone before the click
    // lands, the backoff's own next attempt connects instead.
    const retry = page.locator('[data-testid=conn-status] button');
    if ((await retry.count()) > 0) await retry.first().click({ timeout: 2000 }).catch(() => {});
    await waitConnected(page, 45_000);
    await waitFor('the resume answer', async () => page.__resume.length > 0, { timeoutMs: 30_000 });
    assert.equal(page.__resume[0].type, 'resume_failed', JSON.stringify(page.__resume));
    await waitFor('a REST reload', async () => {
      const paths = page.__api.filter((r) => r.at >= mark).map((r) => r.path);
      return paths.includes('/api/sensors') && paths.includes('/api/rooms/general/messages');
    });
    for (const s of SENSORS) {
      await waitFor(`tile ${s} shows ${load.last.get(s)}`, async () => Math.abs((await tileValue(page, s)) - load.last.get(s)) < 0.005);
    }
    await page.waitForSelector(`.messages .msg-text:text-is("${missed}")`);
    assert.equal(await page.locator(`.messages .msg-text:text-is("${missed}")`).count(), 1);
    assert.deepEqual(page.__errors ?? [], [], 'uncaught errors in the page');
  });
});

/** Posts one chat message to room general as user over a WebSocket of a page of its own; resolves on chat_message_sent. */
async function postChat(user, content) {
  const page = await newPage();
  await page.goto(stack.baseURL + '/readyz');
  const token = await stack.token(user);
  const reply = await page.evaluate(
    ({ token, content }) =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws');
        const timer = setTimeout(() => reject(new Error('no reply to chat_message')), 10_000);
        ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', data: { token } }));
        ws.onmessage = (ev) => {
          const m = JSON.parse(ev.data);
          for (const x of m.type === 'batch' ? m.data : [m]) {
            if (x.type === 'auth_ok') ws.send(JSON.stringify({ type: 'chat_message', id: 'p1', data: { room: 'general', content } }));
            if (x.ref === 'p1') {
              clearTimeout(timer);
              ws.close();
              resolve(x.type);
            }
          }
        };
      }),
    { token, content },
  );
  assert.equal(reply, 'chat_message_sent');
  await page.context().close();
}
