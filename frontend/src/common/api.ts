// REST client for /api/*. Adds the bearer token, decodes the JSON error
// shape {"error":{"code","message"}}, and reports a 401 once so the app can
// go back to the login screen.

import { Emitter } from './emitter';
import type { LoginResponse, RefreshResponse } from '../types';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.name = 'ApiError';
  }
}

const TOKEN_KEY = 'watchroom.token';

/** The session token lives in sessionStorage: one tab, gone when it closes. */
export class Session {
  private readonly storage: Storage | undefined;

  constructor(storage: Storage | undefined = globalThis.sessionStorage) {
    this.storage = storage;
  }

  get token(): string | null {
    try {
      return this.storage?.getItem(TOKEN_KEY) ?? null;
    } catch {
      return null;
    }
  }

  set token(v: string | null) {
    try {
      if (v) this.storage?.setItem(TOKEN_KEY, v);
      else this.storage?.removeItem(TOKEN_KEY);
    } catch {
      // storage disabled: the session lasts as long as the page
    }
  }
}

export class Api {
  private readonly session: Session;
  private readonly fetchFn: typeof fetch;
  /** Fired when the server answers 401 to an authenticated request. */
  readonly unauthorized = new Emitter<void>();

  constructor(session: Session, fetchFn: typeof fetch = (...a) => fetch(...a)) {
    this.session = session;
    this.fetchFn = fetchFn;
  }

  async login(username: string, password: string): Promise<LoginResponse> {
    const res = await this.fetchFn('/api/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    if (!res.ok) throw await toError(res);
    const body = (await res.json()) as LoginResponse;
    this.session.token = body.token;
    return body;
  }

  /**
   * Exchanges the current token for a fresh one (POST /api/refresh) and
   * keeps it where the login token is kept. A 401 (revoked or expired)
   * fires unauthorized like any other request.
   */
  async refresh(): Promise<RefreshResponse> {
    const body = await this.request<RefreshResponse>('POST', '/api/refresh');
    this.session.token = body.token;
    return body;
  }

  /**
   * Revokes the current token on the server (POST /api/logout) so that it
   * is refused from now on, everywhere. Never fails: logging out locally
   * must not depend on the server being reachable, nor on its answer (a
   * 401 here is not a session that ended by itself, so unauthorized is not
   * fired). Gives up after timeoutMs.
   */
  async logout(timeoutMs = 5000): Promise<void> {
    const token = this.session.token;
    if (!token) return;
    try {
      await this.fetchFn('/api/logout', {
        method: 'POST',
        headers: { Authorization: 'Bearer ' + token },
        signal: typeof AbortSignal.timeout === 'function' ? AbortSignal.timeout(timeoutMs) : undefined,
      });
    } catch {
      // offline or the server down: the token expires by itself
    }
  }

  async get<T>(path: string, params?: Record<string, string | number | undefined>, signal?: AbortSignal): Promise<T> {
    let url = path;
    if (params) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
      const qs = q.toString();
      if (qs) url += '?' + qs;
    }
    return this.request<T>('GET', url, undefined, signal);
  }

  async request<T>(method: string, url: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const token = this.session.token;
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await this.fetchFn(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    if (res.status === 401) {
      this.unauthorized.emit();
      throw await toError(res);
    }
    if (!res.ok) throw await toError(res);
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }
}

async function toError(res: Response): Promise<ApiError> {
  let code = 'http_' + res.status;
  let message = res.statusText || 'request failed';
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body?.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
    }
  } catch {
    // not JSON
  }
  return new ApiError(res.status, code, message);
}

/** Reports whether err means "this server has no such endpoint yet". */
export function isMissingEndpoint(err: unknown): boolean {
  return err instanceof ApiError && (err.status === 404 || err.status === 405 || err.status === 501);
}
