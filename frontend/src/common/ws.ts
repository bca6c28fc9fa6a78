// The one WebSocket client of the dashboard. It owns the connection to /ws:
// first-message auth, reconnection with backoff, resuming after a reconnect,
// the queue of messages typed while offline, batch unwrapping, acks and
// de-duplication of acked deliveries, keepalive, sending a refreshed token on
// the open connection, and routing of messages by type to subscribers. Views never touch a WebSocket; they subscribe here
// and send through here.
//
// Everything runs on the page's one thread; handlers are called
// synchronously while a frame is being processed, so they should only update
// stores (which render once per animation frame), never render themselves.

import { Emitter } from './emitter';
import type { AuthData, AuthOkData, Envelope, ErrorData, MsgId, ResumeData, ResumedData, Role } from '../types';

/** The subset of the browser WebSocket the client uses (fakes implement it in tests). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type WebSocketFactory = (url: string) => WebSocketLike;

export type ConnState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'offline' | 'stopped';

export interface ConnStatus {
  state: ConnState;
  /** When state is 'reconnecting': epoch ms of the next attempt. */
  retryAt?: number;
  /** When reconnecting: why the server refused the last connection, if it said. */
  refused?: 'too_many_connections';
  /** Failed attempts since the last successful auth. */
  attempt: number;
  user?: string;
  role?: Role;
}

export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_CAP_MS = 30_000;
/** Each delay is the nominal one ±20%, never above the cap. */
export const BACKOFF_JITTER = 0.2;
/**
 * After close 4029 (too many connections) the next attempt waits at least
 * the delay of this attempt number (8 s): the other tabs that hold the
 * connections do not close within a second.
 */
export const TOO_MANY_MIN_ATTEMPT = 3;
/** The server takes at most this many ids in one ack. */
export const MAX_ACK_IDS = 500;

/**
 * backoffDelay returns the wait before reconnect attempt number attempt
 * (0-based): 1 s, 2 s, 4 s … capped at 30 s, each scaled by a random factor
 * in [0.8, 1.2) so that dashboards dropped by one server restart do not all
 * come back in the same millisecond.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const nominal = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 30));
  const factor = 1 - BACKOFF_JITTER + 2 * BACKOFF_JITTER * random();
  return Math.round(Math.min(BACKOFF_CAP_MS, nominal * factor));
}

/** Why the session ended: the server revoked it, the token expired, or the token was refused. */
export type AuthFailureKind = 'revoked' | 'expired' | 'invalid';

export interface AuthFailure {
  kind: AuthFailureKind;
  /** The server's auth_error message or close reason, or the client's own. */
  message: string;
}

/**
 * authFailureKind reads the server's auth_error message ("session revoked;
 * log in again", "token expired; log in again", "invalid or expired
 * token") or 4001 close reason ("session revoked", "token expired").
 */
export function authFailureKind(text: string): AuthFailureKind {
  if (/revoked/i.test(text)) return 'revoked';
  if (/expired/i.test(text)) return 'expired';
  return 'invalid';
}

/** The error a request's promise rejects with. */
export class WsRequestError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = 'WsRequestError';
  }
}

export interface WsClientOptions {
  url: string;
  /** Read on every connection attempt: the token may have been refreshed. */
  getToken: () => string | null;
  createSocket?: WebSocketFactory;
  random?: () => number;
  now?: () => number;
  /** Give up on a connection whose auth_ok has not arrived after this long. */
  authTimeoutMs?: number;
  /** Send an application ping after this long without any frame from the server. */
  heartbeatMs?: number;
  /** Declare the connection dead when a ping gets no answer within this long. */
  heartbeatTimeoutMs?: number;
  /** How many delivered ids are remembered for de-duplication. */
  dedupeWindow?: number;
  /** Requests without a reply after this long reject with code 'timeout'. */
  requestTimeoutMs?: number;
  /**
   * The cursors of what the page holds, read once per reconnect right after
   * auth_ok, before any later frame is handled. Without it (or when it
   * returns null) a reconnect always asks the views to reload.
   */
  getResume?: () => ResumeData | null;
  /** A resume without an answer after this long counts as failed (the views reload). */
  resumeTimeoutMs?: number;
}

/** Why the views must reload over REST after a reconnect. */
export type ReloadReason = 'resume_failed' | 'resume_error' | 'resume_timeout' | 'no_resume';

export interface SendOptions {
  /** Keep the message while disconnected and send it after the next auth_ok. */
  queue?: boolean;
}

export type SendResult = 'sent' | 'queued' | 'dropped';

interface PendingRequest {
  resolve: (msg: Envelope) => void;
  reject: (err: WsRequestError) => void;
  timer?: ReturnType<typeof setTimeout>;
}

const OPEN = 1;

type Handler = (msg: Envelope) => void;

export class WsClient {
  private readonly opts: Required<Omit<WsClientOptions, 'createSocket' | 'getResume'>> & {
    createSocket: WebSocketFactory;
    getResume?: () => ResumeData | null;
  };
  private ws: WebSocketLike | null = null;
  private authed = false;
  private started = false;
  private everAuthed = false;
  private authFailed = false;
  private online = true;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private authTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatSeq = 0;
  private frames = 0;
  private lastFrameAt = 0;
  private seq = 0;
  private readonly idPrefix: string;
  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly pending = new Map<string, PendingRequest>();
  private readonly seen = new Set<string>();
  private readonly seenOrder: string[] = [];
  private outboxList: Envelope[] = [];
  private statusValue: ConnStatus = { state: 'idle', attempt: 0 };
  /** Whether this connection's auth said `"resume":true` (the server holds live messages until the resume). */
  private resumeAnnounced = false;
  /** Ids to ack, collected while a frame is handled and sent as one ack after it. */
  private ackIds: MsgId[] = [];
  private ackKeys = new Set<string>();
  private ackScheduled = false;
  /** The id of the resume waiting for its answer on this connection. */
  private resumeRef: string | null = null;
  private resumeTimer: ReturnType<typeof setTimeout> | undefined;
  /**
   * The cursors of a resume that got no answer before its connection
   * closed. The next resume sends them again (per stream), not the fresh
   * ones: live messages that came between auth_ok and the server's holding
   * point, or a part of the replay, moved the cursors past what was missed.
   */
  private resumeCarry: ResumeData | null = null;

  readonly statusChanged = new Emitter<ConnStatus>();
  /**
   * Fired when a reconnect could not resume (resume_failed, an error reply
   * such as unknown_type from an older server, no answer, no cursors):
   * views reload over REST what they missed. Not fired on the first
   * connect of a page, whose views load by themselves.
   */
  readonly reloadNeeded = new Emitter<ReloadReason>();
  /** Fired when the server has replayed what was missed (the `resumed` answer): nothing to reload. */
  readonly resumed = new Emitter<ResumedData>();
  /** Fired on auth_error or close 4001: the token is no good, log in again (never retried with it). */
  readonly authError = new Emitter<AuthFailure>();
  /** Fired when the outgoing queue changes (a message queued or flushed). */
  readonly outboxChanged = new Emitter<readonly Envelope[]>();

  constructor(options: WsClientOptions) {
    this.opts = {
      createSocket: options.createSocket ?? ((url) => new WebSocket(url) as unknown as WebSocketLike),
      random: Math.random,
      now: () => Date.now(),
      authTimeoutMs: 10_000,
      resumeTimeoutMs: 30_000,
      heartbeatMs: 25_000,
      heartbeatTimeoutMs: 10_000,
      dedupeWindow: 2000,
      requestTimeoutMs: 30_000,
      ...options,
    } as WsClient['opts'];
    // Request ids are unique per page, across reconnects, so a reply that
    // arrives on a later connection still finds its request.
    this.idPrefix = 'r' + Math.floor(this.opts.random() * 36 ** 4).toString(36) + '-';
  }

  get status(): ConnStatus {
    return this.statusValue;
  }

  get outbox(): readonly Envelope[] {
    return this.outboxList;
  }

  /** Connects, and keeps reconnecting until stop(). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.authFailed = false;
    this.connect();
  }

  /** Closes the connection for good (logout) and forgets the outgoing queue. */
  stop(): void {
    this.started = false;
    this.clearTimers();
    const ws = this.ws;
    this.detach();
    if (ws) {
      try {
        ws.close(1000, 'logout');
      } catch {
        // already closed
      }
    }
    this.outboxList = [];
    this.outboxChanged.emit(this.outboxList);
    for (const [, p] of this.pending) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new WsRequestError('stopped', 'disconnected'));
    }
    this.pending.clear();
    // The next start (a new login) loads its views over REST again: it
    // has nothing to resume from.
    this.everAuthed = false;
    this.resumeCarry = null;
    this.setStatus({ state: 'stopped', attempt: 0 });
  }

  /** Skips the backoff wait (a "retry now" button, the browser coming back online). */
  reconnectNow(): void {
    if (!this.started || this.authFailed || this.ws) return;
    if (this.reconnectTimer !== undefined) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
    }
    this.connect();
  }

  /** Wired to the window's online/offline events. */
  setOnline(online: boolean): void {
    this.online = online;
    if (!online && !this.authed && this.started) {
      this.setStatus({ ...this.statusValue, state: 'offline' });
    } else if (online) {
      this.reconnectNow();
    }
  }

  /** Subscribes to messages of one type ('*' for all). Returns the unsubscribe function. */
  on<D = unknown>(type: string, fn: (msg: Envelope<string, D>) => void): () => void {
    let set = this.handlers.get(type);
    if (!set) {
      set = new Set();
      this.handlers.set(type, set);
    }
    set.add(fn as Handler);
    return () => {
      set.delete(fn as Handler);
    };
  }

  /**
   * Sends msg now when authenticated; otherwise queues it when opts.queue is
   * set (chat messages, commands) and drops it when not (typing, pings).
   */
  send(msg: Envelope, opts: SendOptions = {}): SendResult {
    if (this.authed && this.ws && this.ws.readyState === OPEN) {
      this.ws.send(JSON.stringify(msg));
      return 'sent';
    }
    if (opts.queue) {
      this.outboxList = [...this.outboxList, msg];
      this.outboxChanged.emit(this.outboxList);
      return 'queued';
    }
    return 'dropped';
  }

  /** Returns a fresh request id. */
  nextId(): string {
    return this.idPrefix + ++this.seq;
  }

  /**
   * Sends a refreshed token on the open connection, so that the server
   * keeps it open past the old token's expiry. Resolves with the auth_ok
   * answer, or null when there is no authenticated connection (the next
   * one reads the new token through getToken); rejects with the server's
   * error (forbidden: a token it does not accept).
   */
  async reauth(token: string): Promise<AuthOkData | null> {
    if (!this.authed) return null;
    const { reply } = this.request<AuthData>('auth', { token });
    const m = await reply;
    const d = (m.data ?? {}) as Partial<AuthOkData>;
    if (this.statusValue.state === 'connected' && d.user) {
      this.setStatus({ ...this.statusValue, user: d.user, role: d.role });
    }
    return d as AuthOkData;
  }

  /**
   * Sends a request with a fresh id. The promise resolves with the first
   * message whose ref is that id, or rejects with the error that carries
   * it, or with code 'timeout'. A request that could not be sent or queued
   * rejects with code 'offline'.
   */
  request<D = unknown>(
    type: string,
    data?: D,
    opts: SendOptions & { id?: string; timeoutMs?: number } = {},
  ): { id: string; reply: Promise<Envelope> } {
    const id = opts.id ?? this.nextId();
    const msg: Envelope = data === undefined ? { type, id } : { type, id, data };
    const reply = new Promise<Envelope>((resolve, reject) => {
      const p: PendingRequest = { resolve, reject };
      this.pending.set(id, p);
      const result = this.send(msg, opts);
      if (result === 'dropped') {
        this.pending.delete(id);
        reject(new WsRequestError('offline', 'not connected'));
        return;
      }
      const timeoutMs = opts.timeoutMs ?? this.opts.requestTimeoutMs;
      if (timeoutMs > 0 && result === 'sent') this.armRequestTimer(id, p, timeoutMs);
    });
    // Callers that only care about the side effects must not produce
    // unhandled rejections.
    reply.catch(() => {});
    return { id, reply };
  }

  private armRequestTimer(id: string, p: PendingRequest, timeoutMs: number): void {
    p.timer = setTimeout(() => {
      if (this.pending.get(id) === p) {
        this.pending.delete(id);
        p.reject(new WsRequestError('timeout', 'no reply from the server'));
      }
    }, timeoutMs);
  }

  // ---- connection --------------------------------------------------------

  private connect(): void {
    this.reconnectTimer = undefined;
    const token = this.opts.getToken();
    if (!token) {
      this.failAuth('not logged in');
      return;
    }
    this.setStatus({ state: 'connecting', attempt: this.attempt });
    let ws: WebSocketLike;
    try {
      ws = this.opts.createSocket(this.opts.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    // A reconnect resumes right after auth_ok; saying so in the auth makes
    // the server hold live messages until the replay, so that none comes
    // twice or moves the cursors before they are read.
    const resume = this.everAuthed && this.opts.getResume !== undefined;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.resumeAnnounced = resume;
      // The token goes in the first message, never in the URL (URLs end up
      // in proxy and server logs).
      const data: AuthData = resume ? { token, resume: true } : { token };
      ws.send(JSON.stringify({ type: 'auth', data }));
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.onFrame(ev.data);
    };
    ws.onerror = () => {
      // A close event always follows; reconnection is handled there.
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.onClosed(ev.code, ev.reason);
    };
    this.authTimer = setTimeout(() => {
      if (this.ws === ws && !this.authed) this.abandon(ws, 4000, 'auth timeout');
    }, this.opts.authTimeoutMs);
  }

  /** Treats ws as dead now, without waiting for a close handshake that may never finish. */
  private abandon(ws: WebSocketLike, code: number, reason: string): void {
    this.detach();
    try {
      ws.close(code, reason);
    } catch {
      // ignore
    }
    this.onClosed(code, reason, true);
  }

  private detach(): void {
    const ws = this.ws;
    if (ws) {
      ws.onopen = null;
      ws.onmessage = null;
      ws.onclose = null;
      ws.onerror = null;
    }
    this.ws = null;
    this.authed = false;
    this.resumeAnnounced = false;
    // Acks belong to their connection's frames; what a dead one did not
    // ack comes again on the next connection and is acked there.
    this.ackIds = [];
    this.ackKeys.clear();
  }

  private onClosed(code: number, reason: string, alreadyDetached = false): void {
    if (!alreadyDetached) this.detach();
    this.clearConnTimers();
    if (!this.started) return;
    if (code === 4001) {
      // Usually an auth_error came first and failed the session already.
      this.failAuth(reason || 'session expired or invalid');
      return;
    }
    if (this.authFailed) return;
    if (code === 4029) {
      this.attempt = Math.max(this.attempt, TOO_MANY_MIN_ATTEMPT);
      this.scheduleReconnect('too_many_connections');
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(refused?: ConnStatus['refused']): void {
    const delay = backoffDelay(this.attempt, this.opts.random);
    this.attempt++;
    const retryAt = this.opts.now() + delay;
    this.setStatus({ state: this.online ? 'reconnecting' : 'offline', retryAt, attempt: this.attempt, refused });
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private failAuth(message: string): void {
    if (this.authFailed) return;
    this.authFailed = true;
    this.clearTimers();
    const ws = this.ws;
    this.detach();
    if (ws) {
      try {
        ws.close(1000, 'auth failed');
      } catch {
        // ignore
      }
    }
    this.setStatus({ state: 'offline', attempt: this.attempt });
    this.authError.emit({ kind: authFailureKind(message), message });
  }

  private clearConnTimers(): void {
    if (this.authTimer !== undefined) clearTimeout(this.authTimer);
    if (this.heartbeatTimer !== undefined) clearTimeout(this.heartbeatTimer);
    if (this.resumeTimer !== undefined) clearTimeout(this.resumeTimer);
    this.authTimer = this.heartbeatTimer = this.resumeTimer = undefined;
    // An unanswered resume dies with its connection; resumeCarry keeps
    // its cursors for the next one.
    this.resumeRef = null;
  }

  private clearTimers(): void {
    this.clearConnTimers();
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  private setStatus(s: ConnStatus): void {
    this.statusValue = s;
    this.statusChanged.emit(s);
  }

  // ---- keepalive ---------------------------------------------------------

  /**
   * Pings the server when it has been silent for heartbeatMs and abandons
   * the connection when the ping gets no frame back in time. A half-open
   * TCP connection looks open to the browser forever: without this, a
   * dashboard could sit "connected" and silently stale.
   */
  private startHeartbeat(ws: WebSocketLike): void {
    const { heartbeatMs, heartbeatTimeoutMs, now } = this.opts;
    const tick = (): void => {
      if (this.ws !== ws) return;
      const idle = now() - this.lastFrameAt;
      if (idle < heartbeatMs) {
        this.heartbeatTimer = setTimeout(tick, heartbeatMs - idle);
        return;
      }
      const framesBefore = this.frames;
      ws.send(JSON.stringify({ type: 'ping', id: 'hb' + ++this.heartbeatSeq }));
      this.heartbeatTimer = setTimeout(() => {
        if (this.ws !== ws) return;
        if (this.frames === framesBefore) this.abandon(ws, 4000, 'heartbeat timeout');
        else tick();
      }, heartbeatTimeoutMs);
    };
    this.heartbeatTimer = setTimeout(tick, heartbeatMs);
  }

  // ---- incoming ----------------------------------------------------------

  private onFrame(raw: unknown): void {
    if (typeof raw !== 'string') return;
    this.frames++;
    this.lastFrameAt = this.opts.now();
    if (raw === 'ping') {
      this.ws?.send('pong');
      return;
    }
    if (raw === 'pong') return;
    let msg: unknown;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    if (isEnvelope(msg) && msg.type === 'batch') {
      if (Array.isArray(msg.data)) {
        for (const m of msg.data) this.onMessage(m);
      }
    } else {
      this.onMessage(msg);
    }
    // One ack for the whole frame (a batch, the deliveries pending since
    // the last connection): acks count against the request rate limit.
    this.flushAcks();
  }

  private onMessage(m: unknown): void {
    if (!isEnvelope(m)) return;
    if (m.type === 'auth_error') {
      // Before auth_ok: a bad token. After it: the token expired mid-connection.
      const d = m.data as { message?: string } | undefined;
      this.failAuth(d?.message || 'authentication failed');
      return;
    }
    if (!this.authed) {
      if (m.type === 'auth_ok') this.onAuthOk(m as Envelope<'auth_ok', AuthOkData>);
      return;
    }
    switch (m.type) {
      case 'ping':
        this.rawSend({ type: 'pong', ref: m.id });
        return;
      case 'pong':
        return;
    }
    if (m.id !== undefined && m.id !== null) {
      // Ack every time, duplicates included: a redelivery means the server
      // never got the earlier ack.
      this.queueAck(m.id);
      const key = String(m.id);
      if (this.seen.has(key)) return;
      this.remember(key);
    }
    if (this.resumeRef !== null && m.ref !== undefined && m.ref !== null && String(m.ref) === this.resumeRef) {
      this.onResumeAnswer(m);
    }
    if (m.ref !== undefined && m.ref !== null) {
      const key = String(m.ref);
      const p = this.pending.get(key);
      if (p) {
        this.pending.delete(key);
        if (p.timer) clearTimeout(p.timer);
        if (m.type === 'error') {
          const d = (m.data ?? {}) as Partial<ErrorData>;
          p.reject(new WsRequestError(d.code ?? 'error', d.message ?? 'request failed'));
        } else {
          p.resolve(m);
        }
      }
    }
    this.dispatch(m.type, m);
    this.dispatch('*', m);
  }

  private onAuthOk(m: Envelope<'auth_ok', AuthOkData>): void {
    if (this.authTimer !== undefined) clearTimeout(this.authTimer);
    this.authTimer = undefined;
    this.authed = true;
    this.attempt = 0;
    const again = this.everAuthed;
    this.everAuthed = true;
    this.setStatus({ state: 'connected', attempt: 0, user: m.data?.user, role: m.data?.role });
    if (this.ws) this.startHeartbeat(this.ws);
    // The cursors are read here, before any frame after auth_ok is
    // handled: a live message arriving before the server starts holding
    // must not move them past what was missed.
    if (again) this.sendResume();
    this.flushOutbox();
    this.dispatch('auth_ok', m);
  }

  // ---- resume ------------------------------------------------------------

  /**
   * Asks the server to replay what this page missed while away. The
   * replayed messages are ordinary messages and are routed as such; the
   * stores de-duplicate them against what they hold.
   */
  private sendResume(): void {
    const fresh = this.opts.getResume?.() ?? null;
    if (!fresh) {
      // The auth promised a resume: an empty one releases the live
      // messages the server holds for it now rather than after its wait.
      if (this.resumeAnnounced) this.rawSend({ type: 'resume', id: this.nextId(), data: {} });
      this.reloadNeeded.emit('no_resume');
      return;
    }
    const data: ResumeData = this.resumeCarry ? { ...fresh, ...this.resumeCarry } : fresh;
    if (this.resumeCarry?.rooms && fresh.rooms) data.rooms = { ...fresh.rooms, ...this.resumeCarry.rooms };
    this.resumeCarry = data;
    const id = this.nextId();
    this.resumeRef = id;
    this.rawSend({ type: 'resume', id, data });
    const ws = this.ws;
    this.resumeTimer = setTimeout(() => {
      if (this.ws !== ws || this.resumeRef !== id) return;
      this.resumeRef = null;
      this.resumeCarry = null;
      this.reloadNeeded.emit('resume_timeout');
    }, this.opts.resumeTimeoutMs);
  }

  private onResumeAnswer(m: Envelope): void {
    if (m.type !== 'resumed' && m.type !== 'resume_failed' && m.type !== 'error') return;
    this.resumeRef = null;
    this.resumeCarry = null;
    if (this.resumeTimer !== undefined) clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
    if (m.type === 'resumed') this.resumed.emit((m.data ?? {}) as ResumedData);
    else this.reloadNeeded.emit(m.type === 'resume_failed' ? 'resume_failed' : 'resume_error');
  }

  private flushOutbox(): void {
    if (this.outboxList.length === 0) return;
    const queued = this.outboxList;
    this.outboxList = [];
    for (const msg of queued) {
      this.rawSend(msg);
      const key = msg.id !== undefined ? String(msg.id) : undefined;
      const p = key !== undefined ? this.pending.get(key) : undefined;
      if (p && !p.timer && this.opts.requestTimeoutMs > 0) this.armRequestTimer(key!, p, this.opts.requestTimeoutMs);
    }
    this.outboxChanged.emit(this.outboxList);
  }

  /** Collects id for the ack sent at the end of this frame (or, outside one, at the next microtask). */
  private queueAck(id: MsgId): void {
    const key = String(id);
    if (this.ackKeys.has(key)) return; // twice in one frame: one ack says it
    this.ackKeys.add(key);
    this.ackIds.push(id);
    if (!this.ackScheduled) {
      this.ackScheduled = true;
      queueMicrotask(() => {
        this.ackScheduled = false;
        this.flushAcks();
      });
    }
  }

  /** Sends the collected acks: one id as a plain ref, more as arrays of up to MAX_ACK_IDS. */
  private flushAcks(): void {
    if (this.ackIds.length === 0) return;
    const ids = this.ackIds;
    this.ackIds = [];
    this.ackKeys.clear();
    for (let i = 0; i < ids.length; i += MAX_ACK_IDS) {
      const chunk = ids.slice(i, i + MAX_ACK_IDS);
      this.rawSend({ type: 'ack', ref: chunk.length === 1 ? chunk[0] : chunk });
    }
  }

  private rawSend(msg: unknown): void {
    const ws = this.ws;
    if (ws && ws.readyState === OPEN) ws.send(JSON.stringify(msg));
  }

  private remember(key: string): void {
    this.seen.add(key);
    this.seenOrder.push(key);
    if (this.seenOrder.length > this.opts.dedupeWindow) {
      const old = this.seenOrder.shift()!;
      this.seen.delete(old);
    }
  }

  private dispatch(type: string, m: Envelope): void {
    const set = this.handlers.get(type);
    if (!set) return; // unknown types are ignored
    for (const fn of [...set]) {
      try {
        fn(m);
      } catch (err) {
        console.error(`handler for ${type} failed`, err);
      }
    }
  }
}

function isEnvelope(v: unknown): v is Envelope & { id?: MsgId | null; ref?: MsgId | null } {
  return typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string';
}

/** The /ws URL of the page's own origin: wss on https pages. */
export function wsURL(loc: { protocol: string; host: string } = location): string {
  return (loc.protocol === 'https:' ? 'wss://' : 'ws://') + loc.host + '/ws';
}
