import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  BACKOFF_CAP_MS,
  type WebSocketLike,
  WsClient,
  type WsClientOptions,
  WsRequestError,
  backoffDelay,
  wsURL,
} from './ws';
import type { Envelope, ResumeData, ResumedData } from '../types';

/** A hand-written fake of the browser WebSocket, driven by the test as "the server". */
class FakeSocket implements WebSocketLike {
  readyState = 0;
  sent: string[] = [];
  closedWith: { code?: number; reason?: string } | null = null;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;

  constructor(readonly url: string) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(data);
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  // ---- server side ----
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  receive(msg: unknown): void {
    this.onmessage?.({ data: typeof msg === 'string' ? msg : JSON.stringify(msg) });
  }

  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }

  json(): Envelope[] {
    return this.sent.filter((s) => s.startsWith('{')).map((s) => JSON.parse(s) as Envelope);
  }
}

interface Harness {
  client: WsClient;
  sockets: FakeSocket[];
  last: () => FakeSocket;
  /** Opens the latest socket and answers its auth with auth_ok. */
  connect: () => FakeSocket;
}

function harness(opts: Partial<WsClientOptions> = {}): Harness {
  const sockets: FakeSocket[] = [];
  const client = new WsClient({
    url: 'ws://example.test/ws',
    getToken: () => 'tok-1',
    createSocket: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    random: () => 0.5,
    ...opts,
  });
  const last = () => sockets[sockets.length - 1];
  const connect = () => {
    const s = last();
    s.open();
    s.receive({ type: 'auth_ok', data: { user: 'alice', role: 'operator', expires_at: '2030-01-01T00:00:00Z' } });
    return s;
  };
  return { client, sockets, last, connect };
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('backoffDelay', () => {
  it('doubles from 1 s, capped at 30 s, with ±20% jitter', () => {
    const nominal = [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
    for (const [attempt, n] of nominal.entries()) {
      for (const r of [0, 0.25, 0.5, 0.999999]) {
        const d = backoffDelay(attempt, () => r);
        expect(d, `attempt ${attempt} random ${r}`).toBeGreaterThanOrEqual(Math.floor(n * 0.8));
        expect(d).toBeLessThanOrEqual(Math.min(BACKOFF_CAP_MS, Math.ceil(n * 1.2)));
      }
      expect(backoffDelay(attempt, () => 0.5)).toBe(n);
    }
  });

  it('spreads delays with the random source', () => {
    expect(backoffDelay(2, () => 0)).toBe(3200);
    expect(backoffDelay(2, () => 0.999999)).toBe(4800);
    expect(backoffDelay(40, () => 0.999999)).toBe(BACKOFF_CAP_MS);
  });
});

describe('WsClient', () => {
  it('sends auth as the first message, with the token in the message and not the URL', () => {
    const h = harness();
    h.client.start();
    const s = h.last();
    expect(s.url).toBe('ws://example.test/ws');
    expect(s.url).not.toContain('tok-1');
    s.open();
    expect(s.json()[0]).toEqual({ type: 'auth', data: { token: 'tok-1' } });
    expect(h.client.status.state).toBe('connecting');
    s.receive({ type: 'auth_ok', data: { user: 'alice', role: 'operator' } });
    expect(h.client.status).toMatchObject({ state: 'connected', user: 'alice', role: 'operator' });
  });

  it('reconnects with growing jittered delays and resets after auth_ok', () => {
    const rand = [0, 0.999999, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5];
    let i = 0;
    const h = harness({ random: () => rand[i++ % rand.length] });
    // random() was called once by the constructor for the id prefix.
    h.client.start();
    const delays: number[] = [];
    for (let n = 0; n < 7; n++) {
      const before = h.sockets.length;
      h.last().drop();
      const st = h.client.status;
      expect(st.state).toBe('reconnecting');
      const d = st.retryAt! - Date.now();
      delays.push(d);
      vi.advanceTimersByTime(d - 1);
      expect(h.sockets.length).toBe(before);
      vi.advanceTimersByTime(1);
      expect(h.sockets.length).toBe(before + 1);
    }
    expect(delays).toEqual([1200, 2000, 4000, 8000, 16000, 30000, 30000]);

    // A successful auth resets the sequence to 1 s.
    h.connect();
    h.last().drop();
    expect(h.client.status.retryAt! - Date.now()).toBe(1000);
  });

  it('keeps every delay within its jitter bounds and the cap', () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return (seed - 1) / 2147483646;
    };
    const h = harness({ random });
    h.client.start();
    for (let n = 0; n < 12; n++) {
      h.last().drop();
      const d = h.client.status.retryAt! - Date.now();
      const nominal = Math.min(30000, 1000 * 2 ** n);
      expect(d).toBeGreaterThanOrEqual(nominal * 0.8);
      expect(d).toBeLessThanOrEqual(Math.min(30000, nominal * 1.2));
      vi.advanceTimersByTime(d);
    }
  });

  it('queues messages sent while offline and flushes them in order after re-auth', () => {
    const h = harness();
    h.client.start();
    const s1 = h.connect();
    s1.drop();
    expect(h.client.send({ type: 'chat_message', data: { room: 'general', content: 'one' } }, { queue: true })).toBe(
      'queued',
    );
    const { id } = h.client.request('command', { sensor_id: 's-1', action: 'calibrate_sensor', params: {} }, { queue: true });
    h.client.send({ type: 'chat_message', data: { room: 'general', content: 'three' } }, { queue: true });
    expect(h.client.send({ type: 'typing', data: { room: 'general' } })).toBe('dropped');
    expect(h.client.outbox).toHaveLength(3);

    vi.advanceTimersByTime(h.client.status.retryAt! - Date.now());
    const s2 = h.last();
    expect(s2).not.toBe(s1);
    s2.open();
    // Nothing but auth before auth_ok.
    expect(s2.json().map((m) => m.type)).toEqual(['auth']);
    s2.receive({ type: 'auth_ok', data: { user: 'alice', role: 'operator' } });
    const sent = s2.json();
    expect(sent.map((m) => m.type)).toEqual(['auth', 'chat_message', 'command', 'chat_message']);
    expect((sent[1].data as { content: string }).content).toBe('one');
    expect(sent[2].id).toBe(id);
    expect((sent[3].data as { content: string }).content).toBe('three');
    expect(h.client.outbox).toHaveLength(0);
  });

  it('unwraps batch frames in order', () => {
    const h = harness();
    const got: Envelope[] = [];
    h.client.on('*', (m) => got.push(m));
    h.client.start();
    const s = h.connect();
    s.receive({
      type: 'batch',
      data: [
        { type: 'reading', data: { sensor_id: 's-1', metric: 't', value: 1, ts: '2026-01-01T00:00:00Z' } },
        { type: 'reading', data: { sensor_id: 's-1', metric: 't', value: 2, ts: '2026-01-01T00:00:01Z' } },
        { type: 'chat_message', data: { id: 1, room: 'general', user: 'bob', content: 'hi', ts: '' } },
        { type: 'reading', data: { sensor_id: 's-1', metric: 't', value: 3, ts: '2026-01-01T00:00:02Z' } },
      ],
    });
    expect(got.map((m) => m.type)).toEqual(['reading', 'reading', 'chat_message', 'reading']);
    expect(got.filter((m) => m.type === 'reading').map((m) => (m.data as { value: number }).value)).toEqual([1, 2, 3]);
  });

  it('acks every message with a top-level id and drops redelivered duplicates', () => {
    const h = harness();
    const got: Envelope[] = [];
    h.client.on('command_response', (m) => got.push(m));
    h.client.on('alert', (m) => got.push(m));
    h.client.start();
    const s1 = h.connect();
    const resp = { type: 'command_response', id: 41, ref: 'c1', data: { command_id: 'x', status: 'success' } };
    s1.receive(resp);
    s1.receive({ type: 'batch', data: [{ type: 'alert', id: 42, data: { id: 7 } }, resp] });
    expect(got.map((m) => m.id)).toEqual([41, 42]);
    // A frame's acks go out as one ack after it.
    expect(s1.json().filter((m) => m.type === 'ack')).toEqual([
      { type: 'ack', ref: 41 },
      { type: 'ack', ref: [42, 41] },
    ]);

    // Redelivery on the next connection: acked again, handled once.
    s1.drop();
    vi.advanceTimersByTime(h.client.status.retryAt! - Date.now());
    const s2 = h.connect();
    s2.receive(resp);
    s2.receive({ type: 'alert', id: 43, data: { id: 8 } });
    expect(got.map((m) => m.id)).toEqual([41, 42, 43]);
    expect(s2.json().filter((m) => m.type === 'ack')).toEqual([
      { type: 'ack', ref: 41 },
      { type: 'ack', ref: 43 },
    ]);
  });

  it('does not ack messages without an id', () => {
    const h = harness();
    h.client.start();
    const s = h.connect();
    s.receive({ type: 'reading', data: { sensor_id: 's', metric: 'm', value: 1, ts: '2026-01-01T00:00:00Z' } });
    s.receive({ type: 'chat_message', data: { id: 5, room: 'general', user: 'bob', content: 'x', ts: '' } });
    expect(s.json().filter((m) => m.type === 'ack')).toEqual([]);
  });

  it('ignores unknown types, garbage and non-envelopes without breaking', () => {
    const h = harness();
    const got: string[] = [];
    h.client.on('reading', (m) => got.push(m.type));
    h.client.start();
    const s = h.connect();
    s.receive({ type: 'something_new', data: { x: 1 } });
    s.receive('not json {');
    s.receive('[1,2,3]');
    s.receive({ notype: true });
    s.receive({ type: 'batch', data: 'nope' });
    s.receive({ type: 'reading', data: {} });
    expect(got).toEqual(['reading']);
    expect(h.client.status.state).toBe('connected');
  });

  it('asks for a reload after every auth_ok but the first when it has no cursors to resume from', () => {
    const h = harness();
    let n = 0;
    h.client.reloadNeeded.on(() => n++);
    h.client.start();
    h.connect();
    expect(n).toBe(0);
    h.last().drop(1001);
    vi.advanceTimersByTime(h.client.status.retryAt! - Date.now());
    h.connect();
    expect(n).toBe(1);
    h.last().drop(4008);
    vi.advanceTimersByTime(h.client.status.retryAt! - Date.now());
    // Open but not authenticated yet: not reconnected.
    h.last().open();
    expect(n).toBe(1);
    h.last().receive({ type: 'auth_ok', data: { user: 'alice', role: 'operator' } });
    expect(n).toBe(2);
  });

  it('stops and reports on auth_error instead of retrying', () => {
    const h = harness();
    const errors: string[] = [];
    h.client.authError.on((f) => errors.push(f.message));
    h.client.start();
    const s = h.last();
    s.open();
    s.receive({ type: 'auth_error', data: { message: 'token expired' } });
    s.drop(4001);
    expect(errors).toEqual(['token expired']);
    expect(h.client.status.state).toBe('offline');
    vi.advanceTimersByTime(120_000);
    expect(h.sockets).toHaveLength(1);
  });

  it('stops on auth_error after auth_ok (token expired mid-connection)', () => {
    const h = harness();
    const errors: string[] = [];
    h.client.authError.on((f) => errors.push(f.message));
    h.client.start();
    const s = h.connect();
    s.receive({ type: 'auth_error', data: { message: 'token expired' } });
    expect(errors).toEqual(['token expired']);
    expect(h.client.status.state).toBe('offline');
    vi.advanceTimersByTime(120_000);
    expect(h.sockets).toHaveLength(1);
  });

  it('treats close code 4001 without auth_error as an auth failure', () => {
    const h = harness();
    const errors: string[] = [];
    h.client.authError.on((f) => errors.push(f.message));
    h.client.start();
    h.last().open();
    h.last().drop(4001);
    expect(errors).toHaveLength(1);
    vi.advanceTimersByTime(60_000);
    expect(h.sockets).toHaveLength(1);
  });

  it('answers application pings and bare text pings', () => {
    const h = harness();
    h.client.start();
    const s = h.connect();
    s.receive({ type: 'ping', id: 7 });
    s.receive('ping');
    expect(s.sent.slice(1)).toEqual([JSON.stringify({ type: 'pong', ref: 7 }), 'pong']);
  });

  it('resolves requests with the reply carrying their ref and rejects on error', async () => {
    const h = harness();
    h.client.start();
    const s = h.connect();
    const a = h.client.request('join_room', { room: 'ops' });
    const b = h.client.request('join_room', { room: 'nope' });
    s.receive({ type: 'joined', ref: a.id, data: { room: 'ops', members: [], history: [] } });
    s.receive({ type: 'error', ref: b.id, data: { code: 'not_found', message: 'no such room' } });
    await expect(a.reply).resolves.toMatchObject({ type: 'joined' });
    await expect(b.reply).rejects.toMatchObject({ code: 'not_found' });
    await expect(b.reply).rejects.toBeInstanceOf(WsRequestError);
  });

  it('times requests out when no reply comes', async () => {
    const h = harness({ requestTimeoutMs: 5000 });
    h.client.start();
    h.connect();
    const r = h.client.request('list_rooms');
    vi.advanceTimersByTime(5000);
    await expect(r.reply).rejects.toMatchObject({ code: 'timeout' });
  });

  it('abandons a silent connection after an unanswered heartbeat ping', () => {
    const h = harness({ heartbeatMs: 25_000, heartbeatTimeoutMs: 10_000 });
    h.client.start();
    const s = h.connect();
    vi.advanceTimersByTime(25_000);
    expect(s.json().at(-1)).toMatchObject({ type: 'ping' });
    vi.advanceTimersByTime(10_000);
    expect(s.closedWith?.code).toBe(4000);
    expect(h.client.status.state).toBe('reconnecting');
  });

  it('keeps a connection that answers its heartbeat', () => {
    const h = harness({ heartbeatMs: 25_000, heartbeatTimeoutMs: 10_000 });
    h.client.start();
    const s = h.connect();
    vi.advanceTimersByTime(25_000);
    const ping = s.json().at(-1)!;
    s.receive({ type: 'pong', ref: ping.id });
    vi.advanceTimersByTime(10_000);
    expect(s.closedWith).toBeNull();
    expect(h.client.status.state).toBe('connected');
  });

  it('gives up on a connection that never authenticates and retries', () => {
    const h = harness({ authTimeoutMs: 5000 });
    h.client.start();
    h.last().open();
    vi.advanceTimersByTime(5000);
    expect(h.client.status.state).toBe('reconnecting');
  });

  it('stop() closes, forgets the queue and never reconnects', () => {
    const h = harness();
    h.client.start();
    const s = h.connect();
    s.drop();
    h.client.send({ type: 'chat_message', data: {} }, { queue: true });
    h.client.stop();
    expect(h.client.outbox).toHaveLength(0);
    vi.advanceTimersByTime(120_000);
    expect(h.sockets).toHaveLength(1);
    expect(h.client.status.state).toBe('stopped');
  });

  it('reconnectNow skips the wait', () => {
    const h = harness();
    h.client.start();
    h.connect();
    h.last().drop();
    expect(h.sockets).toHaveLength(1);
    h.client.reconnectNow();
    expect(h.sockets).toHaveLength(2);
  });
});

describe('WsClient resume', () => {
  const cursors: ResumeData = {
    readings: { since: '2026-11-21T10:00:00.123Z' },
    rooms: { general: 41 },
    alerts: 318,
    direct: 55,
  };

  /** A client whose cursors are read from `current`; records reloads and resumes. */
  function resumeHarness() {
    const state = { current: cursors as ResumeData, reads: 0 };
    const h = harness({
      getResume: () => {
        state.reads++;
        return state.current;
      },
    });
    const reloads: string[] = [];
    const resumed: ResumedData[] = [];
    h.client.reloadNeeded.on((r) => reloads.push(r));
    h.client.resumed.on((d) => resumed.push(d));
    const reconnect = () => {
      h.last().drop(1006);
      vi.advanceTimersByTime(h.client.status.retryAt! - Date.now());
      return h.connect();
    };
    return { ...h, state, reloads, resumed, reconnect };
  }

  const resumes = (s: FakeSocket) => s.json().filter((m) => m.type === 'resume');

  it('does not resume on the first connect of the page', () => {
    const h = resumeHarness();
    h.client.start();
    const s = h.connect();
    expect(resumes(s)).toHaveLength(0);
    expect(h.state.reads).toBe(0);
    expect(h.reloads).toEqual([]);
  });

  it('sends resume with the cursors right after auth_ok on every reconnect, before queued messages', () => {
    const h = resumeHarness();
    h.client.start();
    h.connect();
    h.last().drop();
    h.client.send({ type: 'chat_message', id: 'q1', data: { room: 'general', content: 'typed offline' } }, { queue: true });
    vi.advanceTimersByTime(h.client.status.retryAt! - Date.now());
    const s = h.connect();
    const sent = s.json();
    expect(sent.map((m) => m.type)).toEqual(['auth', 'resume', 'chat_message']);
    expect(sent[1].data).toEqual(cursors);
    expect(typeof sent[1].id).toBe('string');
  });

  it('reads the cursors before the frames that follow auth_ok', () => {
    const h = resumeHarness();
    h.client.start();
    h.connect();
    h.last().drop();
    vi.advanceTimersByTime(h.client.status.retryAt! - Date.now());
    const s = h.last();
    s.open();
    // auth_ok and a live reading in one frame: the cursor must not see it.
    h.client.on('reading', () => {
      h.state.current = { readings: { since: '2026-11-21T11:00:00.000Z' } };
    });
    s.receive({
      type: 'batch',
      data: [
        { type: 'auth_ok', data: { user: 'alice', role: 'operator' } },
        { type: 'reading', data: { sensor_id: 's-1', metric: 't', value: 1, ts: '2026-11-21T11:00:00.000Z' } },
      ],
    });
    expect(resumes(s)[0].data).toEqual(cursors);
  });

  it('does not reload on resumed; replayed messages are routed as usual', () => {
    const h = resumeHarness();
    const readings: unknown[] = [];
    h.client.on('reading', (m) => readings.push(m.data));
    h.client.start();
    h.connect();
    const s = h.reconnect();
    const id = resumes(s)[0].id;
    s.receive({ type: 'reading', data: { sensor_id: 's-1', metric: 't', value: 2, ts: '2026-11-21T10:00:01.000Z' } });
    s.receive({ type: 'resumed', ref: id, data: { readings: 1, rooms: { general: 0 }, alerts: 0, direct: 0 } });
    expect(readings).toHaveLength(1);
    expect(h.resumed).toEqual([{ readings: 1, rooms: { general: 0 }, alerts: 0, direct: 0 }]);
    expect(h.reloads).toEqual([]);
    // Replayed messages carry no top-level id: nothing was acked.
    expect(s.json().filter((m) => m.type === 'ack')).toHaveLength(0);
  });

  it.each([
    ['resume_failed', { type: 'resume_failed', data: { reason: 'too_old', stream: 'readings', max_age_seconds: 3600 } }, 'resume_failed'],
    ['resume_failed too_many', { type: 'resume_failed', data: { reason: 'too_many', stream: 'rooms', max: 10000 } }, 'resume_failed'],
    ['unknown_type from an older server', { type: 'error', data: { code: 'unknown_type', message: 'unknown type "resume"' } }, 'resume_error'],
    ['bad_request', { type: 'error', data: { code: 'bad_request', message: 'bad' } }, 'resume_error'],
  ])('reloads once on %s', (_name, answer, reason) => {
    const h = resumeHarness();
    h.client.start();
    h.connect();
    const s = h.reconnect();
    s.receive({ ...answer, ref: resumes(s)[0].id });
    expect(h.reloads).toEqual([reason]);
    expect(h.resumed).toEqual([]);
    // A second answer with the same ref (or another error) changes nothing.
    s.receive({ ...answer, ref: resumes(s)[0].id });
    expect(h.reloads).toEqual([reason]);
  });

  it('ignores errors that answer other requests', () => {
    const h = resumeHarness();
    h.client.start();
    h.connect();
    const s = h.reconnect();
    s.receive({ type: 'error', ref: 'other', data: { code: 'forbidden', message: 'no' } });
    s.receive({ type: 'error', data: { code: 'rate_limited', message: 'slow down' } });
    expect(h.reloads).toEqual([]);
  });

  it('reloads when the resume gets no answer in time', () => {
    const h = resumeHarness();
    h.client.start();
    h.connect();
    h.reconnect();
    vi.advanceTimersByTime(29_000);
    expect(h.reloads).toEqual([]);
    vi.advanceTimersByTime(1_000);
    expect(h.reloads).toEqual(['resume_timeout']);
  });

  it('sends the unanswered cursors again when the connection drops during a resume', () => {
    const h = resumeHarness();
    h.client.start();
    h.connect();
    let s = h.reconnect();
    const firstId = resumes(s)[0].id;
    // Part of the replay and some live messages moved the cursors on...
    h.state.current = { readings: { since: '2026-11-21T10:05:00.000Z' }, rooms: { general: 50, ops: 3 }, alerts: 400, direct: 60 };
    // ...but the connection died before resumed.
    s = h.reconnect();
    const again = resumes(s)[0];
    expect(again.data).toEqual({ ...cursors, rooms: { general: 41, ops: 3 } });
    expect(h.reloads).toEqual([]);
    // An answer to the first resume, had it come late, is not this one's.
    s.receive({ type: 'resume_failed', ref: firstId, data: { reason: 'too_old' } });
    expect(h.reloads).toEqual([]);
    s.receive({ type: 'resumed', ref: again.id, data: {} });
    expect(h.resumed).toHaveLength(1);
    // Answered: the next reconnect reads fresh cursors.
    s = h.reconnect();
    expect(resumes(s)[0].data).toEqual(h.state.current);
    // No timeout fires for a resume whose connection is gone.
    s.drop();
    vi.advanceTimersByTime(60_000);
    expect(h.reloads).toEqual([]);
  });

  it('starts over after stop(): the next login loads over REST and does not resume', () => {
    const h = resumeHarness();
    h.client.start();
    h.connect();
    h.client.stop();
    h.client.start();
    const s = h.connect();
    expect(resumes(s)).toHaveLength(0);
    expect(h.reloads).toEqual([]);
  });
});

describe('WsClient resume announced in auth', () => {
  const cursors: ResumeData = { readings: { since: '2026-11-21T10:00:00.123Z' }, alerts: 3 };
  const reconnect = (h: Harness) => {
    h.last().drop(1006);
    vi.advanceTimersByTime(h.client.status.retryAt! - Date.now());
    return h.connect();
  };

  it('says resume:true in the auth of every reconnect that resumes, and still sends resume after auth_ok', () => {
    const h = harness({ getResume: () => cursors });
    h.client.start();
    const first = h.connect();
    expect(first.json()[0]).toEqual({ type: 'auth', data: { token: 'tok-1' } });
    for (let n = 0; n < 2; n++) {
      const s = reconnect(h);
      const sent = s.json();
      expect(sent[0]).toEqual({ type: 'auth', data: { token: 'tok-1', resume: true } });
      expect(sent[1]).toMatchObject({ type: 'resume', data: cursors });
    }
  });

  it('does not announce a resume it will not send: no cursors source, or a fresh login', () => {
    const plain = harness();
    plain.client.start();
    plain.connect();
    expect(reconnect(plain).json()[0]).toEqual({ type: 'auth', data: { token: 'tok-1' } });

    const h = harness({ getResume: () => cursors });
    h.client.start();
    h.connect();
    h.client.stop();
    h.client.start();
    expect(h.connect().json()[0]).toEqual({ type: 'auth', data: { token: 'tok-1' } });
  });

  it('releases the held messages with an empty resume when the cursors are gone, and reloads', () => {
    let current: ResumeData | null = cursors;
    const h = harness({ getResume: () => current });
    const reloads: string[] = [];
    h.client.reloadNeeded.on((r) => reloads.push(r));
    h.client.start();
    h.connect();
    current = null;
    const s = reconnect(h);
    const sent = s.json();
    expect(sent[0].data).toEqual({ token: 'tok-1', resume: true });
    expect(sent[1]).toMatchObject({ type: 'resume', data: {} });
    expect(reloads).toEqual(['no_resume']);
    // Its answer is not taken for a resume of the cursors.
    s.receive({ type: 'resumed', ref: sent[1].id, data: {} });
    expect(reloads).toEqual(['no_resume']);
  });
});

describe('WsClient token refresh on the open connection', () => {
  it('sends the new token as an auth request and resolves with the auth_ok that answers it', async () => {
    const h = harness();
    const statuses: (string | undefined)[] = [];
    h.client.statusChanged.on((st) => statuses.push(st.role));
    h.client.start();
    const s = h.connect();
    const done = h.client.reauth('tok-2');
    const auth = s.json().at(-1)!;
    expect(auth).toEqual({ type: 'auth', id: expect.any(String), data: { token: 'tok-2' } });
    s.receive({ type: 'auth_ok', ref: auth.id, data: { user: 'alice', role: 'admin', expires_at: '2030-01-02T00:00:00.000Z' } });
    await expect(done).resolves.toEqual({ user: 'alice', role: 'admin', expires_at: '2030-01-02T00:00:00.000Z' });
    // Still the same connection, now with the new token's role; no resume, no reload.
    expect(h.client.status).toMatchObject({ state: 'connected', role: 'admin' });
    expect(h.sockets).toHaveLength(1);
    expect(s.json().filter((m) => m.type === 'resume')).toEqual([]);
  });

  it('rejects with the server error for a token it refuses, and keeps the connection', async () => {
    const h = harness();
    h.client.start();
    const s = h.connect();
    const done = h.client.reauth('tok-bob');
    s.receive({ type: 'error', ref: s.json().at(-1)!.id, data: { code: 'forbidden', message: 'a connection cannot change user' } });
    await expect(done).rejects.toMatchObject({ code: 'forbidden' });
    expect(h.client.status.state).toBe('connected');
  });

  it('sends nothing while disconnected: the next connection reads the new token', async () => {
    let token = 'tok-1';
    const h = harness({ getToken: () => token });
    h.client.start();
    h.connect();
    h.last().drop();
    token = 'tok-2';
    await expect(h.client.reauth('tok-2')).resolves.toBeNull();
    vi.advanceTimersByTime(h.client.status.retryAt! - Date.now());
    const s = h.connect();
    expect(s.json()[0].data).toMatchObject({ token: 'tok-2' });
    expect(s.json().filter((m) => m.type === 'auth')).toHaveLength(1);
  });
});

describe('WsClient close codes', () => {
  it.each([
    ['session revoked; log in again', 'session revoked', 'revoked'],
    ['token expired; log in again', 'token expired', 'expired'],
  ])('on auth_error "%s" and close 4001 "%s": reports %s and never reconnects', (message, reason, kind) => {
    const h = harness();
    const failures: unknown[] = [];
    h.client.authError.on((f) => failures.push(f));
    h.client.start();
    const s = h.connect();
    s.receive({ type: 'auth_error', data: { message } });
    s.onclose?.({ code: 4001, reason });
    expect(failures).toEqual([{ kind, message }]);
    vi.advanceTimersByTime(10 * 60_000);
    expect(h.sockets).toHaveLength(1);
    expect(h.client.status.state).toBe('offline');
  });

  it('reads the kind from the close reason when no auth_error came', () => {
    const h = harness();
    const failures: unknown[] = [];
    h.client.authError.on((f) => failures.push(f));
    h.client.start();
    const s = h.connect();
    s.readyState = 3;
    s.onclose?.({ code: 4001, reason: 'session revoked' });
    expect(failures).toEqual([{ kind: 'revoked', message: 'session revoked' }]);
    vi.advanceTimersByTime(10 * 60_000);
    expect(h.sockets).toHaveLength(1);
  });

  it('on 4029 says too many connections and retries with a backoff that starts at 8 s and grows', () => {
    const h = harness();
    h.client.start();
    h.connect();
    const refuse = () => {
      const s = h.last();
      s.open();
      s.receive({ type: 'error', data: { code: 'too_many_connections', message: 'too many open connections' } });
      s.readyState = 3;
      s.onclose?.({ code: 4029, reason: 'too many connections' });
    };
    h.last().drop(1001);
    vi.advanceTimersByTime(h.client.status.retryAt! - Date.now());
    const delays: number[] = [];
    for (let n = 0; n < 4; n++) {
      refuse();
      const st = h.client.status;
      expect(st).toMatchObject({ state: 'reconnecting', refused: 'too_many_connections' });
      delays.push(st.retryAt! - Date.now());
      const before = h.sockets.length;
      vi.advanceTimersByTime(st.retryAt! - Date.now() - 1);
      expect(h.sockets).toHaveLength(before);
      vi.advanceTimersByTime(1);
      expect(h.sockets).toHaveLength(before + 1);
    }
    expect(delays).toEqual([8000, 16000, 30000, 30000]);
    // Let in: the notice goes, the backoff starts over.
    h.connect();
    expect(h.client.status.refused).toBeUndefined();
    h.last().drop(1006);
    expect(h.client.status.retryAt! - Date.now()).toBe(1000);
  });
});

describe('WsClient batch acks', () => {
  const alertMsg = (id: number) => ({ type: 'alert', id, data: { id } });
  const acks = (s: FakeSocket) => s.json().filter((m) => m.type === 'ack');

  it('acks the deliveries that come with auth_ok in one ack', () => {
    const h = harness();
    h.client.start();
    const s = h.last();
    s.open();
    s.receive({
      type: 'batch',
      data: [
        { type: 'auth_ok', data: { user: 'alice', role: 'operator' } },
        alertMsg(1),
        { type: 'direct_message', id: 2, data: { id: 5 } },
        { type: 'reading', data: { sensor_id: 's', metric: 'm', value: 1, ts: '2026-01-01T00:00:00Z' } },
        { type: 'command_response', id: '3', ref: 'c1', data: {} },
      ],
    });
    expect(acks(s)).toEqual([{ type: 'ack', ref: [1, 2, '3'] }]);
  });

  it('names an id once per ack even when the frame holds it twice', () => {
    const h = harness();
    h.client.start();
    const s = h.connect();
    s.receive({ type: 'batch', data: [alertMsg(7), alertMsg(8), alertMsg(7)] });
    expect(acks(s)).toEqual([{ type: 'ack', ref: [7, 8] }]);
  });

  it('splits a frame of more than 500 acked messages into acks of at most 500 ids', () => {
    const h = harness();
    h.client.start();
    const s = h.connect();
    const ids = Array.from({ length: 1201 }, (_, i) => 100 + i);
    s.receive({ type: 'batch', data: ids.map(alertMsg) });
    const sent = acks(s).map((m) => m.ref as unknown as number[]);
    expect(sent.map((r) => r.length)).toEqual([500, 500, 201]);
    expect(sent.flat()).toEqual(ids);
  });

  it('sends one ack per frame, not per message, however many frames come', () => {
    const h = harness();
    h.client.start();
    const s = h.connect();
    for (let f = 0; f < 10; f++) s.receive({ type: 'batch', data: [alertMsg(f * 10 + 1), alertMsg(f * 10 + 2)] });
    expect(acks(s)).toHaveLength(10);
  });

  it('drops the acks of a connection that closed before they went out', () => {
    const h = harness();
    h.client.start();
    const s = h.connect();
    const onMessage = s.onmessage!;
    // A handler that kills the connection while the frame is handled.
    h.client.on('alert', () => s.drop());
    onMessage({ data: JSON.stringify({ type: 'batch', data: [alertMsg(1), alertMsg(2)] }) });
    expect(acks(s)).toEqual([]);
  });
});

describe('wsURL', () => {
  it('derives ws:// or wss:// from the page', () => {
    expect(wsURL({ protocol: 'http:', host: 'localhost:8080' })).toBe('ws://localhost:8080/ws');
    expect(wsURL({ protocol: 'https:', host: 'watch.example.com' })).toBe('wss://watch.example.com/ws');
  });
});
