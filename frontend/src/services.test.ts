// The resume after a reconnect, through the real wiring (Services: one
// WsClient, the stores, the REST client) against a fake server: the browser
// WebSocket and fetch are replaced by hand-written fakes.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SESSION_NOTICE, Services, collectResume } from './services';
import { sensorKey } from './sensors/store';
import type { Alert, ChatMessage, DirectMessage, Envelope, Reading } from './types';

class FakeWebSocket {
  static all: FakeWebSocket[] = [];
  readyState = 0;
  sent: Envelope[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;

  constructor(readonly url: string) {
    FakeWebSocket.all.push(this);
  }

  send(d: string) {
    if (d.startsWith('{')) this.sent.push(JSON.parse(d) as Envelope);
  }

  close() {
    this.readyState = 3;
  }

  // ---- server side ----
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }

  receive(...msgs: unknown[]) {
    // Several messages go as one batch frame, as the server may send them.
    const m = msgs.length === 1 ? msgs[0] : { type: 'batch', data: msgs };
    this.onmessage?.({ data: JSON.stringify(m) });
  }

  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

const T0 = Date.parse('2026-11-21T10:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
/** An expiry far enough ahead that no token refresh happens during a test. */
const later = () => iso(Date.now() + 12 * 3600_000);
const reading = (sensor: string, ms: number, value: number): Reading => ({
  sensor_id: sensor,
  metric: 'temperature',
  value,
  unit: '°C',
  ts: iso(ms),
});
const chat = (id: number, room = 'general'): ChatMessage => ({ id, room, user: 'bob', content: `m${id}`, ts: iso(T0 + id) });
const alert = (id: number, eventId: number, updatedMs: number, state: Alert['state'] = 'open'): Alert => ({
  id,
  event_id: eventId,
  sensor_id: 's-1',
  metric: 'temperature',
  kind: 'threshold',
  severity: 'warning',
  value: 99,
  limit_or_score: 60,
  state,
  opened_at: iso(T0),
  updated_at: iso(updatedMs),
  count: 1,
  acked_by: null,
  resolved_by: null,
  resolved_at: null,
});
const dm = (id: number): DirectMessage => ({ id, from: 'bob', to: 'alice', content: `dm${id}`, ts: iso(T0 + id) });

/** The fake REST server: what it holds, and every request it got. */
class FakeRest {
  requests: string[] = [];
  /** The Authorization header of each request, in step with requests. */
  auth: (string | undefined)[] = [];
  /** How long the login token lasts. */
  loginTtl = 12 * 3600_000;
  /** What POST /api/refresh answers: 200 with a new token, or this status. */
  refreshStatus = 200;
  refreshed = 0;
  /** POST /api/logout fails as a network error. */
  logoutDown = false;
  /** Runs when POST /api/logout arrives. */
  onLogout = () => {};
  sensors = [{ sensor_id: 's-1', metric: 'temperature', unit: '°C', first_seen: iso(T0), last_seen: iso(T0), last_value: 20 }];
  alerts: Alert[] = [alert(7, 300, T0)];
  messages: ChatMessage[] = [chat(1), chat(2)];
  readings: Reading[] = [];

  fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const u = new URL(String(input), 'http://dash.test');
    this.requests.push(`${init?.method ?? 'GET'} ${u.pathname}`);
    this.auth.push((init?.headers as Record<string, string> | undefined)?.Authorization);
    const json = (body: unknown) => new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
    if (u.pathname === '/api/login') return json({ token: 'tok', expires_at: iso(Date.now() + this.loginTtl), user: 'alice', role: 'operator' });
    if (u.pathname === '/api/refresh') {
      if (this.refreshStatus !== 200) {
        return new Response('{"error":{"code":"unauthorized","message":"session revoked"}}', { status: this.refreshStatus });
      }
      this.refreshed++;
      return json({ token: `tok-r${this.refreshed}`, expires_at: iso(Date.now() + 12 * 3600_000), user: 'alice', role: 'admin' });
    }
    if (u.pathname === '/api/logout') {
      this.onLogout();
      if (this.logoutDown) throw new TypeError('failed to fetch');
      return new Response(null, { status: 204 });
    }
    if (u.pathname === '/api/sensors') return json({ sensors: this.sensors });
    if (u.pathname === '/api/alerts') {
      const state = u.searchParams.get('state');
      if (!state) return json({ alerts: [...this.alerts].sort((a, b) => Number(b.id) - Number(a.id)).slice(0, Number(u.searchParams.get('limit') ?? 100)) });
      return json({ alerts: this.alerts.filter((a) => a.state === state) });
    }
    if (u.pathname === '/api/rooms') return json({ rooms: [{ room: 'general', kind: 'chat', members: 2, online: 1, member: true }] });
    if (u.pathname === '/api/rooms/general/messages') return json({ room: 'general', messages: this.messages });
    const m = /^\/api\/sensors\/([^/]+)\/readings$/.exec(u.pathname);
    if (m) {
      const from = Date.parse(u.searchParams.get('from') ?? '');
      const to = Date.parse(u.searchParams.get('to') ?? '');
      const rows = this.readings
        .filter((r) => r.sensor_id === m[1] && Date.parse(r.ts) >= from && Date.parse(r.ts) <= to)
        .sort((a, b) => Date.parse(b.ts) - Date.parse(a.ts));
      return json({ readings: rows });
    }
    return new Response('{"error":{"code":"not_found","message":"no"}}', { status: 404 });
  };

  /** The REST reads since the mark, without the sparkline backfill reads. */
  since(mark: number): string[] {
    return this.requests.slice(mark);
  }
}

let rest: FakeRest;

beforeEach(() => {
  FakeWebSocket.all = [];
  rest = new FakeRest();
  const store = new Map<string, string>();
  const storage = {
    getItem: (k: string) => store.get(k) ?? null,
    setItem: (k: string, v: string) => void store.set(k, v),
    removeItem: (k: string) => void store.delete(k),
  };
  vi.stubGlobal('WebSocket', FakeWebSocket);
  vi.stubGlobal('fetch', rest.fetch);
  vi.stubGlobal('location', { protocol: 'http:', host: 'dash.test', reload() {} });
  vi.stubGlobal('window', { addEventListener() {}, removeEventListener() {} });
  vi.stubGlobal('sessionStorage', storage);
  vi.stubGlobal('localStorage', storage);
  vi.stubGlobal('requestAnimationFrame', (cb: () => void) => setTimeout(cb, 0));
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

/** Lets every pending promise (fake fetches, their json()) settle. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 0));
}

async function loggedIn() {
  const svc = new Services();
  await svc.login('alice', 'pw');
  const ws = FakeWebSocket.all[0];
  ws.open();
  ws.receive({ type: 'auth_ok', data: { user: 'alice', role: 'operator', expires_at: later() } });
  await settle();
  return svc;
}

/** Drops the connection and lets the client reconnect and authenticate; returns the new socket. */
async function reconnect(svc: Services): Promise<FakeWebSocket> {
  FakeWebSocket.all[FakeWebSocket.all.length - 1].drop();
  svc.ws.reconnectNow();
  const ws = FakeWebSocket.all[FakeWebSocket.all.length - 1];
  ws.open();
  ws.receive({ type: 'auth_ok', data: { user: 'alice', role: 'operator', expires_at: later() } });
  return ws;
}

const resumeOf = (ws: FakeWebSocket) => ws.sent.find((m) => m.type === 'resume');
const key = sensorKey('s-1', 'temperature');

describe('resume through the wiring', () => {
  it('loads over REST on the first connect and sends no resume', async () => {
    const svc = await loggedIn();
    expect(resumeOf(FakeWebSocket.all[0])).toBeUndefined();
    expect(rest.requests).toContain('GET /api/sensors');
    expect(rest.requests).toContain('GET /api/rooms/general/messages');
    expect(svc.chat.rooms.get('general')!.messages.map((m) => m.id)).toEqual([1, 2]);
  });

  it('tracks the cursors of what it receives and resumes with them', async () => {
    const svc = await loggedIn();
    const ws = FakeWebSocket.all[0];
    ws.receive(
      { type: 'reading', data: reading('s-1', T0 + 1000, 21) },
      { type: 'reading', data: reading('s-2', T0 + 3000, 5) },
      // Out of order: the cursor is the max ts, not the last one.
      { type: 'reading', data: reading('s-1', T0 + 2000, 22) },
      { type: 'chat_message', data: chat(3) },
      { type: 'alert', id: 900, data: alert(8, 305, T0 + 10) },
      { type: 'alert', id: 901, data: alert(7, 302, T0 + 20, 'acknowledged') },
      { type: 'direct_message', id: 902, data: dm(12) },
      { type: 'direct_message', id: 903, data: dm(11) },
    );
    const next = await reconnect(svc);
    expect(resumeOf(next)!.data).toEqual({
      readings: { since: iso(T0 + 3000) },
      rooms: { general: 3 },
      alerts: 305,
      direct: 12,
    });
    // The resume comes right after auth: before any queued message.
    expect(next.sent.map((m) => m.type).slice(0, 2)).toEqual(['auth', 'resume']);
  });

  it('on resumed: no REST reload, and the replay is merged without duplicates', async () => {
    const svc = await loggedIn();
    let ws = FakeWebSocket.all[0];
    ws.receive(
      { type: 'reading', data: reading('s-1', T0 + 1000, 21) },
      { type: 'reading', data: reading('s-1', T0 + 2000, 22) },
      { type: 'chat_message', data: chat(3) },
      { type: 'alert', id: 900, data: alert(7, 301, T0 + 10, 'acknowledged') },
      { type: 'direct_message', id: 901, data: dm(11) },
    );
    await settle();
    const s = svc.sensors.get(key)!;
    const sparkBefore = s.spark.length;
    let critical = 0;
    svc.alerts.newCritical.on(() => critical++);

    ws = await reconnect(svc);
    const ref = resumeOf(ws)!.id;
    const mark = rest.requests.length;
    // The replay holds the reading at `since` again, then what was missed;
    // live messages sent before the server's holding point came twice too.
    ws.receive(
      { type: 'reading', data: reading('s-1', T0 + 2000, 22) },
      { type: 'reading', data: reading('s-1', T0 + 3000, 23) },
      { type: 'reading', data: reading('s-1', T0 + 4000, 24) },
      { type: 'chat_message', data: chat(3) },
      { type: 'chat_message', data: chat(4) },
      { type: 'alert', data: alert(7, 301, T0 + 10, 'acknowledged') },
      // An older version of alert 7 (a late redelivery) does not win.
      { type: 'alert', id: 950, data: alert(7, 300, T0, 'open') },
      { type: 'alert', data: alert(9, 310, T0 + 30) },
      { type: 'direct_message', data: dm(11) },
      { type: 'direct_message', data: dm(13) },
    );
    ws.receive({ type: 'reading', data: reading('s-1', T0 + 3000, 23) }); // live, held and dropped by a good server; harmless here
    ws.receive({ type: 'resumed', ref, data: { readings: 3, rooms: { general: 2 }, alerts: 2, direct: 2 } });
    await settle();

    // Only silences reload: their messages are not replayed (docs/protocol.md#rules-and-silences).
    expect(rest.since(mark)).toEqual(['GET /api/silences']);
    expect(s.value).toBe(24);
    expect(s.ts).toBe(T0 + 4000);
    const times = Array.from({ length: s.spark.length }, (_, i) => s.spark.timeAt(i));
    expect(times.slice(sparkBefore - 2)).toEqual([T0 + 1000, T0 + 2000, T0 + 3000, T0 + 4000]);
    expect(new Set(times).size).toBe(times.length);
    expect(svc.chat.rooms.get('general')!.messages.map((m) => m.id)).toEqual([1, 2, 3, 4]);
    expect(svc.alerts.get(7)!.state).toBe('acknowledged');
    expect(svc.alerts.active.map((a) => a.id).sort()).toEqual([7, 9]);
    expect(critical).toBe(0);
    expect(svc.chat.dms.get('bob')!.messages.map((m) => m.id)).toEqual([11, 13]);
    // The cursors moved on with the replay.
    expect(collectResume(svc.sensors, svc.alerts, svc.chat).data).toEqual({
      readings: { since: iso(T0 + 4000) },
      rooms: { general: 4 },
      alerts: 310,
      direct: 13,
    });
  });

  it.each([
    ['resume_failed', { type: 'resume_failed', data: { reason: 'too_many', stream: 'readings', max: 10000 } }],
    ['an unknown_type error (older server)', { type: 'error', data: { code: 'unknown_type', message: 'unknown type' } }],
  ])('on %s: reloads the views over REST', async (_name, answer) => {
    const svc = await loggedIn();
    FakeWebSocket.all[0].receive({ type: 'reading', data: reading('s-1', T0 + 1000, 21) });
    const ws = await reconnect(svc);
    await settle();
    const mark = rest.requests.length;
    expect(rest.since(mark)).toEqual([]);
    // What happened while away, only in storage.
    rest.sensors[0] = { ...rest.sensors[0], last_seen: iso(T0 + 60_000), last_value: 30 };
    rest.messages = [chat(1), chat(2), chat(3), chat(4)];
    rest.alerts = [alert(7, 320, T0 + 50_000, 'acknowledged')];
    ws.receive({ ...answer, ref: resumeOf(ws)!.id });
    await settle();
    const got = rest.since(mark);
    expect(got).toContain('GET /api/sensors');
    expect(got).toContain('GET /api/alerts');
    expect(got).toContain('GET /api/rooms/general/messages');
    expect(svc.sensors.get(key)!.value).toBe(30);
    expect(svc.chat.rooms.get('general')!.messages.map((m) => m.id)).toEqual([1, 2, 3, 4]);
    expect(svc.alerts.get(7)!.state).toBe('acknowledged');
  });

  it('takes the alerts cursor from the newest alert when none is live, 0 when there is none', async () => {
    rest.alerts = [alert(3, 290, T0, 'resolved'), alert(5, 296, T0, 'resolved')];
    let svc = await loggedIn();
    expect((resumeOf(await reconnect(svc))!.data as Record<string, unknown>).alerts).toBe(296);
    svc.logout();
    FakeWebSocket.all = [];
    rest.alerts = [];
    svc = await loggedIn();
    expect((resumeOf(await reconnect(svc))!.data as Record<string, unknown>).alerts).toBe(0);
  });

  it('reloads after resumed only a stream it had no cursor for', async () => {
    rest.sensors = []; // no reading anywhere yet: no time to count from
    const svc = await loggedIn();
    const ws = await reconnect(svc);
    const data = resumeOf(ws)!.data as Record<string, unknown>;
    expect(data.readings).toBeUndefined();
    expect(data.alerts).toBe(300);
    await settle();
    const mark = rest.requests.length;
    ws.receive({ type: 'resumed', ref: resumeOf(ws)!.id, data: {} });
    await settle();
    expect(rest.since(mark).sort()).toEqual(['GET /api/sensors', 'GET /api/silences']);
  });
});

describe('gap', () => {
  it('records the thinned span, refetches it for the series on screen and merges it', async () => {
    const svc = await loggedIn();
    const ws = FakeWebSocket.all[0];
    ws.receive({ type: 'reading', data: reading('s-1', T0 + 1000, 1) });
    for (let i = 2; i <= 9; i++) rest.readings.push(reading('s-1', T0 + i * 1000, i));
    rest.readings.push(reading('s-1', T0 + 10_000, 10));

    // Not on screen: recorded, not fetched.
    const mark = rest.requests.length;
    ws.receive(
      { type: 'gap', data: { thinned: 8, series: [{ sensor_id: 's-1', metric: 'temperature', from: iso(T0 + 2000), to: iso(T0 + 9000), thinned: 8 }] } },
      { type: 'reading', data: reading('s-1', T0 + 10_000, 10) },
    );
    await settle();
    expect(rest.since(mark)).toEqual([]);
    expect(svc.sensors.gapsOf(key)).toEqual([{ from: T0 + 2000, to: T0 + 9000 }]);
    // The latest reading after the gap updated the tile.
    expect(svc.sensors.get(key)!.value).toBe(10);

    // The detail chart opens: the span is fetched and merged.
    const merged: number[][] = [];
    svc.sensors.onHistory(key, (pts) => merged.push(pts.map((p) => p.v)));
    svc.sensors.onLive(key, () => {});
    await settle();
    expect(rest.since(mark)).toEqual(['GET /api/sensors/s-1/readings']);
    expect(merged).toEqual([[2, 3, 4, 5, 6, 7, 8, 9]]);
    expect(svc.sensors.gapsOf(key)).toEqual([]);
    const s = svc.sensors.get(key)!;
    const values = Array.from({ length: s.spark.length }, (_, i) => s.spark.valueAt(i));
    expect(values.slice(-10)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

    // On screen already: a new gap is fetched at once.
    rest.readings.push(reading('s-1', T0 + 11_000, 11), reading('s-1', T0 + 12_000, 12));
    ws.receive(
      { type: 'gap', data: { thinned: 1, series: [{ sensor_id: 's-1', metric: 'temperature', from: iso(T0 + 11_000), to: iso(T0 + 11_000), thinned: 1 }] } },
      { type: 'reading', data: reading('s-1', T0 + 12_000, 12) },
    );
    await settle();
    expect(merged[1]).toEqual([11]);
    expect(svc.sensors.get(key)!.value).toBe(12);
  });
});

describe('session', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  });

  /** settle() for fake timers: lets the fake fetches and what they start run, without moving the clock. */
  async function flush(): Promise<void> {
    for (let i = 0; i < 20; i++) await vi.advanceTimersByTimeAsync(0);
  }

  async function login(): Promise<{ svc: Services; ws: FakeWebSocket }> {
    const svc = new Services();
    await svc.login('alice', 'pw');
    const ws = FakeWebSocket.all[0];
    ws.open();
    await flush();
    return { svc, ws };
  }

  /** Moves the clock on by ms, with a frame from the server every 20 s so that the heartbeat keeps the socket. */
  async function pass(ws: FakeWebSocket, ms: number): Promise<void> {
    for (let left = ms; left > 0; left -= 20_000) {
      await vi.advanceTimersByTimeAsync(Math.min(20_000, left));
      ws.receive('pong');
    }
  }

  it('refreshes the token a minute before it expires and sends the new one on the open socket', async () => {
    rest.loginTtl = 3 * 60_000;
    const { svc, ws } = await login();
    // auth_ok names the same expiry as the login.
    ws.receive({ type: 'auth_ok', data: { user: 'alice', role: 'operator', expires_at: iso(Date.now() + 3 * 60_000) } });
    await pass(ws, 2 * 60_000 - 1000);
    expect(rest.requests).not.toContain('POST /api/refresh');
    await pass(ws, 1000);
    await flush();
    const i = rest.requests.indexOf('POST /api/refresh');
    expect(i).toBeGreaterThan(-1);
    expect(rest.auth[i]).toBe('Bearer tok');
    // Kept where the login token is kept: REST and the next connection use it.
    expect(svc.session.token).toBe('tok-r1');
    const auth = ws.sent.at(-1)!;
    expect(auth).toEqual({ type: 'auth', id: expect.any(String), data: { token: 'tok-r1' } });
    ws.receive({ type: 'auth_ok', ref: auth.id, data: { user: 'alice', role: 'admin', expires_at: iso(Date.now() + 12 * 3600_000) } });
    await flush();
    expect(svc.ws.status).toMatchObject({ state: 'connected', role: 'admin' });
    expect(svc.me).toEqual({ user: 'alice', role: 'admin' });
    expect(FakeWebSocket.all).toHaveLength(1);
    expect(rest.refreshed).toBe(1);
  });

  it('goes to the login screen when the refresh is refused with 401', async () => {
    rest.loginTtl = 2 * 60_000;
    rest.refreshStatus = 401;
    const { svc, ws } = await login();
    await pass(ws, 60_000);
    await flush();
    expect(rest.requests).toContain('POST /api/refresh');
    expect(svc.loggedIn).toBe(false);
    expect(svc.loginNotice).not.toBe('');
    expect(svc.ws.status.state).toBe('stopped');
  });

  it.each([
    ['session revoked; log in again', 'session revoked', SESSION_NOTICE.revoked],
    ['token expired; log in again', 'token expired', SESSION_NOTICE.expired],
  ])('on auth_error "%s" and close 4001: the login screen says so and the old token is not used again', async (message, reason, notice) => {
    const { svc, ws } = await login();
    ws.receive({ type: 'auth_ok', data: { user: 'alice', role: 'operator', expires_at: later() } });
    ws.receive({ type: 'auth_error', data: { message } });
    ws.readyState = 3;
    ws.onclose?.({ code: 4001, reason });
    await flush();
    expect(svc.loggedIn).toBe(false);
    expect(svc.loginNotice).toBe(notice);
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(FakeWebSocket.all).toHaveLength(1);
    expect(rest.requests).not.toContain('POST /api/refresh');
  });

  it('logs out on the server with the token, after closing the socket, then forgets it', async () => {
    const reload = vi.fn();
    vi.stubGlobal('location', { protocol: 'http:', host: 'dash.test', reload });
    const { svc, ws } = await login();
    let atLogout: { token: string | null; socket: number } | undefined;
    rest.onLogout = () => (atLogout = { token: svc.session.token, socket: ws.readyState });
    await svc.logout();
    const i = rest.requests.indexOf('POST /api/logout');
    expect(rest.auth[i]).toBe('Bearer tok');
    expect(atLogout).toEqual({ token: 'tok', socket: 3 });
    expect(svc.loggedIn).toBe(false);
    expect(svc.loginNotice).toBe('');
    expect(reload).toHaveBeenCalledOnce();
  });

  it('logs out locally when the server cannot be reached', async () => {
    const reload = vi.fn();
    vi.stubGlobal('location', { protocol: 'http:', host: 'dash.test', reload });
    rest.logoutDown = true;
    const { svc } = await login();
    await svc.logout();
    expect(rest.requests).toContain('POST /api/logout');
    expect(svc.loggedIn).toBe(false);
    expect(reload).toHaveBeenCalledOnce();
  });
});

describe('collectResume readings cursor', () => {
  const alerts = { eventCursor: undefined };
  const chat = { roomCursors: () => ({}), directCursor: undefined };
  it('resumes by commit order (seq) once a reading carried one', () => {
    const data = collectResume({ since: '2026-11-21T10:00:00.000Z', latestSeq: 41 }, alerts, chat).data;
    expect(data.readings).toEqual({ since: '2026-11-21T10:00:00.000Z', seq: 41 });
  });
  it('falls back to the timestamp without a seq', () => {
    const data = collectResume({ since: '2026-11-21T10:00:00.000Z', latestSeq: 0 }, alerts, chat).data;
    expect(data.readings).toEqual({ since: '2026-11-21T10:00:00.000Z' });
  });
});

describe('commands typed while offline', () => {
  const commandsSent = (ws: FakeWebSocket) => ws.sent.filter((m) => m.type === 'command');

  it('holds them, never sends them by themselves, and sends one only when asked again', async () => {
    const svc = await loggedIn();
    FakeWebSocket.all[0].drop();
    await settle();
    const reboot = svc.commands.send('s-1', 'reboot');
    const ping = svc.commands.send('s-1', 'ping');
    expect(reboot.status).toBe('held');
    expect(svc.commands.sendHeld(reboot)).toBe(false); // still offline

    const ws = await reconnect(svc);
    await settle();
    // Back online: nothing went out by itself, both still wait for the operator.
    expect(commandsSent(ws)).toEqual([]);
    expect([reboot.status, ping.status]).toEqual(['held', 'held']);

    svc.commands.discard(reboot);
    expect(svc.commands.sendHeld(ping)).toBe(true);
    expect(commandsSent(ws).map((m) => (m.data as { action: string }).action)).toEqual(['ping']);
    expect(reboot.status).toBe('discarded');
    expect(svc.commands.sendHeld(reboot)).toBe(false); // a discarded one stays discarded
    expect(ping.status).toBe('pending');
    expect([ping.wasHeld, ping.sentAt !== undefined]).toEqual([true, true]);
    expect(commandsSent(ws)).toHaveLength(1);
  });

  it('sends at once when connected', async () => {
    const svc = await loggedIn();
    const c = svc.commands.send('s-1', 'ping');
    expect([c.status, c.wasHeld]).toEqual(['pending', false]);
    expect(commandsSent(FakeWebSocket.all[0])).toHaveLength(1);
  });
});
