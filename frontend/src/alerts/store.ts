// Open and acknowledged alerts, from GET /api/alerts and live `alert`
// messages (acked by the ws client). Also the count of critical alerts the
// user has not looked at yet (the title badge).

import { Emitter } from '../common/emitter';
import { type FrameBatcher, Observable } from '../common/frame';
import { parseTs } from '../common/format';
import { sensorKey } from '../sensors/store';
import type { Alert, AlertSeverity } from '../types';

export type Availability = 'unknown' | 'available' | 'missing';

export class AlertStore {
  private readonly byId = new Map<string, Alert>();
  private activeCache: Alert[] | null = null;
  private severityCache: Map<string, AlertSeverity> | null = null;
  readonly changed: Observable;
  /** A critical alert that was not known before has opened. */
  readonly newCritical = new Emitter<Alert>();
  /** Every alert that arrived live and was not held before (for the screen reader's live region); never a muted one. */
  readonly newAlert = new Emitter<Alert>();
  /**
   * Whether a silence in force covers an alert (docs/alerts.md#silences).
   * Such an alert, or one that opened under a silence (silence_id), is
   * kept and shown but never announced; while covered it is not counted
   * either. Set by the wiring.
   */
  coveredBySilence: (a: Alert) => boolean = () => false;
  unseenCritical = 0;
  availability: Availability = 'unknown';
  loadError = '';
  /**
   * The highest event_id of any alert applied (live, replayed or over
   * REST): the resume cursor of the alerts stream. Undefined until an
   * alert carrying one arrives.
   */
  eventCursor: number | undefined;

  constructor(batcher: FrameBatcher) {
    this.changed = new Observable(batcher);
  }

  get(id: string | number): Alert | undefined {
    return this.byId.get(String(id));
  }

  /** Applies an alert from a live message; announces new critical ones. */
  apply(a: Alert, announce = true): void {
    if (!a || a.id === undefined || a.id === null || typeof a.sensor_id !== 'string') return;
    const id = String(a.id);
    if (a.event_id !== undefined) this.noteEventId(a.event_id);
    const prev = this.byId.get(id);
    // Messages can arrive out of order across a reconnect (REST reload vs
    // redelivery vs replay): never go back to an older version. The same
    // version again (a replayed alert already held) changes nothing.
    if (prev && parseTs(prev.updated_at) > parseTs(a.updated_at)) return;
    if (prev && sameVersion(prev, a)) return;
    this.byId.set(id, a);
    this.invalidate();
    if (!announce || prev || a.silence_id != null || this.coveredBySilence(a)) return;
    this.newAlert.emit(a);
    if (a.severity === 'critical' && a.state === 'open') {
      this.unseenCritical++;
      this.newCritical.emit(a);
    }
  }

  /** Replaces the live set with a REST snapshot (load, reconnect). */
  replaceActive(list: Alert[]): void {
    const fresh = new Set(list.map((a) => String(a.id)));
    for (const [id, a] of this.byId) {
      if (a.state !== 'resolved' && !fresh.has(id)) this.byId.delete(id);
    }
    for (const a of list) this.apply(a, false);
    this.invalidate();
  }

  /**
   * Raises the cursor to eventId when higher. For what a
   * REST load showed without an alert to carry it (no live alert: the
   * newest alert's event_id, or 0 when there is none at all).
   */
  noteEventId(eventId: number): void {
    if (Number.isInteger(eventId) && (this.eventCursor === undefined || eventId > this.eventCursor)) this.eventCursor = eventId;
  }

  markSeen(): void {
    if (this.unseenCritical === 0) return;
    this.unseenCritical = 0;
    this.changed.changed();
  }

  /**
   * The alerts that need attention, newest first: open, acknowledged, and
   * resolved by themselves without anyone having acknowledged them (they
   * stay in view, marked resolved, until a person acknowledges them). The
   * one definition behind the header badge, the tab and the panel.
   */
  get active(): readonly Alert[] {
    if (!this.activeCache) {
      this.activeCache = [...this.byId.values()]
        .filter(needsAttention)
        .sort((a, b) => parseTs(b.opened_at) - parseTs(a.opened_at) || String(b.id).localeCompare(String(a.id)));
    }
    return this.activeCache;
  }

  /**
   * The alerts needing attention that count (the header badge, the tab):
   * active ones no silence in force covers. Not cached: silences expire
   * with time; callers re-render on `changed`, which silence changes and
   * expiries fire too (mutedChanged).
   */
  get counted(): readonly Alert[] {
    return this.active.filter((a) => !this.coveredBySilence(a));
  }

  /** Silences changed (created, ended, expired): whatever counts alerts re-renders. */
  mutedChanged(): void {
    this.changed.changed();
  }

  /** Resolved alerts known to the dashboard, most recently resolved first: the history. */
  get history(): readonly Alert[] {
    return [...this.byId.values()]
      .filter((a) => a.state === 'resolved')
      .sort((a, b) => parseTs(b.resolved_at ?? b.updated_at) - parseTs(a.resolved_at ?? a.updated_at));
  }

  /** The worst severity of the live alerts of one sensor metric, if any. */
  severityOf(key: string): AlertSeverity | undefined {
    if (!this.severityCache) {
      const m = new Map<string, AlertSeverity>();
      for (const a of this.active) {
        if (a.state === 'resolved') continue;
        const k = sensorKey(a.sensor_id, a.metric);
        if (m.get(k) !== 'critical') m.set(k, a.severity);
      }
      this.severityCache = m;
    }
    return this.severityCache.get(key);
  }

  private invalidate(): void {
    this.activeCache = null;
    this.severityCache = null;
    this.changed.changed();
  }
}

/** Open, acknowledged, or resolved by itself and not yet acknowledged. */
export function needsAttention(a: Alert): boolean {
  return a.state === 'open' || a.state === 'acknowledged' || (a.state === 'resolved' && !a.acked_by);
}

function sameVersion(a: Alert, b: Alert): boolean {
  return (
    a.updated_at === b.updated_at &&
    a.state === b.state &&
    a.severity === b.severity &&
    a.count === b.count &&
    a.value === b.value &&
    (a.flapping ?? false) === (b.flapping ?? false) &&
    (a.acked_by ?? null) === (b.acked_by ?? null) &&
    (a.resolved_by ?? null) === (b.resolved_by ?? null)
  );
}
