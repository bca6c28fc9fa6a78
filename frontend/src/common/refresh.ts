// Keeps a session alive: shortly before the token expires, exchanges it for
// a fresh one and hands that over (the WebSocket client sends it on the
// open connection, which the server would otherwise close with 4001
// "token expired").

import { ApiError } from './api';

/** Refresh this long before the token's expires_at. */
export const REFRESH_LEAD_MS = 60_000;
/** After a failed refresh that was not a 401 (network, 5xx), try again after this long. */
export const REFRESH_RETRY_MS = 15_000;
/** setTimeout cannot wait longer than 2^31-1 ms; a longer wait is re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface TokenRefresherOptions {
  /** Gets and stores a fresh token (POST /api/refresh); rejects with ApiError on an HTTP error. */
  refresh: () => Promise<{ token: string; expires_at: string }>;
  /** Called with each fresh token, after it is stored. */
  onRefreshed: (token: string) => void;
  /** Called when the server refuses the refresh with 401: the session is over. */
  onUnauthorized: () => void;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
  leadMs?: number;
  retryMs?: number;
}

export class TokenRefresher {
  private readonly opts: Required<TokenRefresherOptions>;
  private expiresAt: number | undefined;
  private timer: unknown;
  private inFlight = false;
  private stopped = true;

  constructor(options: TokenRefresherOptions) {
    this.opts = {
      now: () => Date.now(),
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
      leadMs: REFRESH_LEAD_MS,
      retryMs: REFRESH_RETRY_MS,
      ...options,
    };
  }

  /**
   * Notes the current token's expiry (from login, auth_ok or a refresh)
   * and arms the refresh. An expiry earlier than one already known (a late
   * answer about an older token) changes nothing.
   */
  schedule(expiresAt: string): void {
    const t = Date.parse(expiresAt);
    if (!Number.isFinite(t)) return;
    this.stopped = false;
    if (this.expiresAt !== undefined && t <= this.expiresAt && this.timer !== undefined) return;
    this.expiresAt = t;
    if (!this.inFlight) this.arm(this.dueIn(t));
  }

  /** Forgets the session (logout, session ended). */
  stop(): void {
    this.stopped = true;
    this.expiresAt = undefined;
    this.disarm();
  }

  /**
   * How long to wait before refreshing a token that expires at t: leadMs
   * before it, but never less than half of what is left, so that a short
   * token (or a clock ahead of the server's) is not refreshed in a loop.
   */
  private dueIn(t: number): number {
    const left = t - this.opts.now();
    return Math.max(0, left - this.opts.leadMs, left / 2);
  }

  private arm(ms: number): void {
    this.disarm();
    this.timer = this.opts.setTimer(() => {
      this.timer = undefined;
      if (ms > MAX_TIMER_MS) this.arm(this.dueIn(this.expiresAt!));
      else void this.run();
    }, Math.min(ms, MAX_TIMER_MS));
  }

  private disarm(): void {
    if (this.timer !== undefined) this.opts.clearTimer(this.timer);
    this.timer = undefined;
  }

  private async run(): Promise<void> {
    if (this.stopped || this.inFlight) return;
    this.inFlight = true;
    try {
      const res = await this.opts.refresh();
      this.inFlight = false;
      if (this.stopped) return;
      this.opts.onRefreshed(res.token);
      this.expiresAt = undefined;
      this.schedule(res.expires_at);
    } catch (err) {
      this.inFlight = false;
      if (this.stopped) return;
      if (err instanceof ApiError && err.status === 401) {
        this.stop();
        this.opts.onUnauthorized();
        return;
      }
      // Try again while the token is still good; once it has expired the
      // server closes the socket with 4001 and the login screen follows.
      if (this.expiresAt !== undefined && this.opts.now() + this.opts.retryMs < this.expiresAt) {
        this.arm(this.opts.retryMs);
      }
    }
  }
}
