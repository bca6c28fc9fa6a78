// Silences (docs/alerts.md#silences): loaded from GET /api/silences on
// start and after every reconnect (the `silence` messages are not
// replayed), kept current by `silence` messages, and created and ended
// over REST. A silence is in force while it has not ended and its until is
// ahead; expiry sends nothing, so a timer fires `changed` when the next
// one runs out and whatever shows silences re-renders without a clock.

import type { Api } from '../common/api';
import { type FrameBatcher, Observable } from '../common/frame';
import { errorText, formatTime, parseTs } from '../common/format';
import type { Alert, NewSilence, RuleKind, Silence } from '../types';

/** Silences loaded: the recent ones are the history, the rest are older. */
const LOAD_LIMIT = 200;
/** setTimeout's longest delay; a later expiry is rescheduled when it fires. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** The rule kind whose breaches open alerts of kind: offline alerts come from the stale rule. */
export function ruleKindOf(alertKind: string): RuleKind {
  return alertKind === 'offline' ? 'stale' : (alertKind as RuleKind);
}

export function inForce(s: Silence, now: number): boolean {
  return !s.ended_at && parseTs(s.until) > now;
}

/** Whether s applies to alerts of this sensor, metric and rule kind (in force or not). */
export function covers(s: Silence, sensorId: string, metric: string, kind: RuleKind): boolean {
  return s.sensor_id === sensorId && (s.metric === null || (s.metric === metric && s.kind === kind));
}

/** "whole sensor" or "temperature threshold". */
export function silenceScope(s: Silence): string {
  return s.metric === null ? 'whole sensor' : `${s.metric} ${s.kind === 'stale' ? 'offline' : s.kind}`;
}

/** "silenced until 14:05:00 by alice". */
export function silencedText(s: Silence): string {
  return `silenced until ${formatTime(s.until)} by ${s.created_by}`;
}

export class SilenceStore {
  private readonly byId = new Map<number, Silence>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  readonly changed: Observable;
  loadError = '';

  constructor(
    batcher: FrameBatcher,
    private readonly api: Api,
  ) {
    this.changed = new Observable(batcher);
  }

  /** Replaces what is held with the server's newest silences. */
  async load(): Promise<void> {
    try {
      const res = await this.api.get<{ silences: Silence[] }>('/api/silences', { limit: LOAD_LIMIT });
      this.byId.clear();
      for (const s of res.silences ?? []) this.byId.set(s.id, s);
      this.loadError = '';
    } catch (err) {
      this.loadError = `Could not load silences: ${errorText(err)}`;
    }
    this.update();
  }

  /** A silence from a `silence` message or a REST answer; an ended one never comes back to life. */
  apply(s: Silence): void {
    if (!s || typeof s.id !== 'number' || typeof s.sensor_id !== 'string') return;
    const prev = this.byId.get(s.id);
    if (prev?.ended_at && !s.ended_at) return;
    this.byId.set(s.id, s);
    this.update();
  }

  async create(body: NewSilence): Promise<Silence> {
    const res = await this.api.request<{ silence: Silence }>('POST', '/api/silences', body);
    this.apply(res.silence);
    return res.silence;
  }

  async end(id: number): Promise<Silence> {
    const res = await this.api.request<{ silence: Silence }>('DELETE', `/api/silences/${id}`);
    this.apply(res.silence);
    return res.silence;
  }

  /** Silences in force at now, newest first. */
  inForce(now = Date.now()): Silence[] {
    return this.recent().filter((s) => inForce(s, now));
  }

  /** Every silence held (in force, ended, expired), newest first: the history. */
  recent(): Silence[] {
    return [...this.byId.values()].sort((a, b) => b.id - a.id);
  }

  /** The silences in force of one sensor, whole-sensor ones first. */
  ofSensor(sensorId: string, now = Date.now()): Silence[] {
    return this.inForce(now)
      .filter((s) => s.sensor_id === sensorId)
      .sort((a, b) => Number(a.metric !== null) - Number(b.metric !== null));
  }

  /** The silence in force covering an alert (the one lasting longest), if any. */
  covering(a: Pick<Alert, 'sensor_id' | 'metric' | 'kind'>, now = Date.now()): Silence | undefined {
    let best: Silence | undefined;
    for (const s of this.byId.values()) {
      if (!inForce(s, now) || !covers(s, a.sensor_id, a.metric, ruleKindOf(a.kind))) continue;
      if (!best || parseTs(s.until) > parseTs(best.until)) best = s;
    }
    return best;
  }

  get(id: number): Silence | undefined {
    return this.byId.get(id);
  }

  /** Signals the change and sets the timer for the next expiry. */
  private update(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const now = Date.now();
    let next = Infinity;
    for (const s of this.byId.values()) if (inForce(s, now)) next = Math.min(next, parseTs(s.until));
    if (Number.isFinite(next)) {
      this.timer = setTimeout(() => this.update(), Math.min(MAX_DELAY_MS, next - now + 50));
    }
    this.changed.changed();
  }

  /** Stops the expiry timer (logout). */
  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
