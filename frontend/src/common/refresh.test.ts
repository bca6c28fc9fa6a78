import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from './api';
import { REFRESH_LEAD_MS, REFRESH_RETRY_MS, TokenRefresher } from './refresh';

const T0 = Date.parse('2026-11-21T10:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const HOUR = 3600_000;

/** A refresher whose refresh answers come from `answers` (a token and expiry, or an error to throw). */
function setup(answers: (number | Error)[]) {
  const calls: number[] = [];
  const tokens: string[] = [];
  let unauthorized = 0;
  const r = new TokenRefresher({
    refresh: async () => {
      calls.push(Date.now());
      const a = answers.shift();
      if (a === undefined) throw new Error('no answer scripted');
      if (a instanceof Error) throw a;
      return { token: `tok-${calls.length + 1}`, expires_at: iso(a) };
    },
    onRefreshed: (t) => tokens.push(t),
    onUnauthorized: () => unauthorized++,
  });
  return { r, calls, tokens, unauthorized: () => unauthorized };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});

afterEach(() => {
  vi.useRealTimers();
});

describe('TokenRefresher', () => {
  it('refreshes a minute before expiry and then before the new expiry', async () => {
    const { r, calls, tokens } = setup([T0 + 2 * HOUR, T0 + 3 * HOUR]);
    r.schedule(iso(T0 + HOUR));
    await vi.advanceTimersByTimeAsync(HOUR - REFRESH_LEAD_MS - 1);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([T0 + HOUR - REFRESH_LEAD_MS]);
    expect(tokens).toEqual(['tok-2']);
    // The auth_ok that answers the new token on the socket names the same expiry: no change.
    r.schedule(iso(T0 + 2 * HOUR));
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(calls).toEqual([T0 + HOUR - REFRESH_LEAD_MS, T0 + 2 * HOUR - REFRESH_LEAD_MS]);
    expect(tokens).toEqual(['tok-2', 'tok-3']);
  });

  it('ignores an older expiry than the one it knows', async () => {
    const { r, calls } = setup([T0 + 3 * HOUR]);
    r.schedule(iso(T0 + 2 * HOUR));
    r.schedule(iso(T0 + HOUR));
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(calls).toHaveLength(1);
  });

  it('stops and reports on 401, without retrying', async () => {
    const { r, calls, unauthorized } = setup([new ApiError(401, 'unauthorized', 'revoked')]);
    r.schedule(iso(T0 + HOUR));
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(calls).toHaveLength(1);
    expect(unauthorized()).toBe(1);
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(calls).toHaveLength(1);
  });

  it('retries a failed refresh while the token is good, then leaves it to the server', async () => {
    const { r, calls, tokens, unauthorized } = setup([
      new TypeError('failed to fetch'),
      new ApiError(503, 'http_503', 'unavailable'),
      T0 + 2 * HOUR,
    ]);
    r.schedule(iso(T0 + HOUR));
    await vi.advanceTimersByTimeAsync(HOUR - REFRESH_LEAD_MS);
    await vi.advanceTimersByTimeAsync(2 * REFRESH_RETRY_MS);
    expect(calls.map((t) => t - (T0 + HOUR - REFRESH_LEAD_MS))).toEqual([0, REFRESH_RETRY_MS, 2 * REFRESH_RETRY_MS]);
    expect(tokens).toEqual(['tok-4']);
    expect(unauthorized()).toBe(0);

    const down = setup(Array.from({ length: 10 }, () => new TypeError('failed to fetch')));
    down.r.schedule(iso(Date.now() + HOUR));
    await vi.advanceTimersByTimeAsync(2 * HOUR);
    // 60 s before expiry, then every 15 s while a retry still lands before it (-45, -30, -15 s).
    expect(down.calls).toHaveLength(4);
  });

  it('refreshes a short-lived token at half its life, not in a loop', async () => {
    const { r, calls } = setup([T0 + 70_000, T0 + 100_000]);
    r.schedule(iso(T0 + 40_000));
    await vi.advanceTimersByTimeAsync(20_000);
    expect(calls).toEqual([T0 + 20_000]);
    await vi.advanceTimersByTimeAsync(25_000);
    expect(calls).toEqual([T0 + 20_000, T0 + 45_000]);
  });

  it('waits for expiries beyond what one timer can wait', async () => {
    const { r, calls } = setup([T0 + 60 * 24 * HOUR]);
    r.schedule(iso(T0 + 30 * 24 * HOUR));
    await vi.advanceTimersByTimeAsync(30 * 24 * HOUR - REFRESH_LEAD_MS - 1);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(1);
  });

  it('does nothing after stop, even when a refresh was under way', async () => {
    let release!: () => void;
    const tokens: string[] = [];
    const r = new TokenRefresher({
      refresh: () => new Promise((resolve) => (release = () => resolve({ token: 'late', expires_at: iso(T0 + 2 * HOUR) }))),
      onRefreshed: (t) => tokens.push(t),
      onUnauthorized: () => {},
    });
    r.schedule(iso(T0 + HOUR));
    await vi.advanceTimersByTimeAsync(HOUR);
    r.stop();
    release();
    await vi.advanceTimersByTimeAsync(3 * HOUR);
    expect(tokens).toEqual([]);
  });
});
