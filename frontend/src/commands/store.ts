// Commands sent from this page (held while offline → pending → success/error/timeout)
// and the stored command history per sensor from GET /api/commands.

import type { Api } from '../common/api';
import { errorText } from '../common/format';
import { type FrameBatcher, Observable } from '../common/frame';
import type { WsClient } from '../common/ws';
import { WsRequestError } from '../common/ws';
import type { CommandRecord, CommandResponseData, Envelope } from '../types';

/**
 * held: typed while offline, never sent; the operator is asked again once
 * the connection is back (a device state may have changed meanwhile, and a
 * reboot sent minutes late is not what anybody asked for).
 * discarded: a held command the operator chose not to send.
 */
export type LocalStatus = 'held' | 'discarded' | 'pending' | 'success' | 'error' | 'timeout';

export interface SentCommand {
  /** The request id once sent; a local id while held. */
  reqId: string;
  sensorId: string;
  action: string;
  params: Record<string, unknown>;
  status: LocalStatus;
  message?: string;
  commandId?: string;
  latencyMs?: number | null;
  /** When the operator asked for it (epoch ms). */
  requestedAt: number;
  /** When it went to the server (epoch ms); unset while held. */
  sentAt?: number;
  /** It was typed offline and held before it was sent or discarded. */
  wasHeld: boolean;
  /** When its outcome arrived (epoch ms). */
  answeredAt?: number;
}

export interface ActionDef {
  action: string;
  label: string;
  description: string;
  /** Ask before sending: anything that changes the device. */
  confirm: boolean;
  /** A numeric parameter asked for in the confirmation dialog. */
  param?: { name: string; label: string; min: number; max: number; step: number; initial: number };
}

/** The actions the dashboard offers (the device side is the simulator's, docs/protocol.md). */
export const ACTIONS: ActionDef[] = [
  { action: 'ping', label: 'Ping', description: 'Check that the device answers.', confirm: false },
  {
    action: 'calibrate_sensor',
    label: 'Calibrate',
    description: 'Recalibrate the sensor against its reference.',
    confirm: true,
  },
  {
    action: 'reboot',
    label: 'Reboot',
    description: 'Restart the device; it stops reporting for a few seconds.',
    confirm: true,
  },
  {
    action: 'set_interval',
    label: 'Set interval',
    description: 'Change how often the device reports.',
    confirm: true,
    param: { name: 'seconds', label: 'Seconds between readings', min: 0.001, max: 3600, step: 0.001, initial: 1 },
  },
];

const MAX_RECENT = 50;

export class CommandStore {
  private recent: SentCommand[] = [];
  private readonly history = new Map<string, { records: CommandRecord[]; error?: string; loading: boolean }>();
  readonly changed: Observable;
  private readonly ws: WsClient;
  private readonly api: Api;
  private readonly now: () => number;
  private heldSeq = 0;
  /** Outcomes that came by command id before their command_sent (see onResponse). */
  private readonly early = new Map<string, CommandResponseData>();

  constructor(batcher: FrameBatcher, ws: WsClient, api: Api, now: () => number = Date.now) {
    this.changed = new Observable(batcher);
    this.ws = ws;
    this.api = api;
    this.now = now;
    ws.on<CommandResponseData>('command_response', (m) => this.onResponse(m));
    // Outcomes may have been stored while we were away and not replayed
    // (a resume replays readings, chat, alerts and direct messages only;
    // this user's own outcomes come again as acked deliveries).
    ws.reloadNeeded.on(() => {
      for (const id of this.history.keys()) void this.loadHistory(id);
    });
    // Held commands wait for the operator, not for the connection: a new
    // state only redraws their "send now?" question.
    ws.statusChanged.on(() => {
      if (this.recent.some((c) => c.status === 'held')) this.changed.changed();
    });
  }

  private get online(): boolean {
    return this.ws.status.state === 'connected';
  }

  /** Commands sent from this page for one sensor, newest first. */
  sentFor(sensorId: string): SentCommand[] {
    return this.recent.filter((c) => c.sensorId === sensorId);
  }

  historyFor(sensorId: string): { records: CommandRecord[]; error?: string; loading: boolean } | undefined {
    return this.history.get(sensorId);
  }

  /**
   * Sends a command now, or holds it while offline: a held command is never
   * sent by itself, the operator sends it again (sendHeld) or discards it.
   */
  send(sensorId: string, action: string, params: Record<string, unknown> = {}): SentCommand {
    const c: SentCommand = {
      reqId: `held-${++this.heldSeq}`,
      sensorId,
      action,
      params,
      status: 'held',
      requestedAt: this.now(),
      wasHeld: !this.online,
    };
    this.recent = [c, ...this.recent].slice(0, MAX_RECENT);
    if (this.online) this.dispatch(c, c.requestedAt);
    this.changed.changed();
    return c;
  }

  /** Sends a held command now (the operator confirmed it again); false when still offline. */
  sendHeld(c: SentCommand): boolean {
    if (c.status !== 'held' || !this.online) return false;
    this.dispatch(c, this.now());
    this.changed.changed();
    return true;
  }

  /** Drops a held command: it is never sent. */
  discard(c: SentCommand): void {
    if (c.status !== 'held') return;
    c.status = 'discarded';
    c.message = 'not sent';
    this.changed.changed();
  }

  private dispatch(c: SentCommand, at: number): void {
    const { id, reply } = this.ws.request('command', { sensor_id: c.sensorId, action: c.action, params: c.params });
    c.reqId = id;
    c.status = 'pending';
    c.sentAt = at;
    reply.then(
      (m) => {
        // command_sent: stored and published; the outcome comes as command_response.
        const d = m.data as { command_id?: string } | undefined;
        if (d?.command_id && !c.commandId) c.commandId = d.command_id;
        const out = c.commandId !== undefined ? this.early.get(c.commandId) : undefined;
        if (out) {
          this.early.delete(out.command_id);
          this.settle(c, out);
        }
        this.changed.changed();
      },
      (err: unknown) => {
        if (c.status !== 'pending') return;
        if (err instanceof WsRequestError && err.code === 'timeout') {
          c.status = 'timeout';
          c.message = 'no answer from the server';
        } else {
          c.status = 'error';
          c.message = errorText(err);
        }
        c.answeredAt = this.now();
        this.changed.changed();
      },
    );
  }

  private onResponse(m: Envelope<string, CommandResponseData>): void {
    const d = m.data;
    if (!d) return;
    // With several server instances a command may be finished by another
    // one than the one it was sent through (the device's answer arrived
    // there, or its timeout was swept there): its outcome then comes with
    // ref null, and is matched by command id, possibly before command_sent
    // has told us that id (kept in early until it does).
    const byRef = m.ref != null ? this.recent.find((x) => x.reqId === String(m.ref)) : undefined;
    const c = byRef ?? this.recent.find((x) => x.commandId !== undefined && x.commandId === d.command_id);
    if (c) {
      this.settle(c, d);
    } else if (m.ref == null && d.command_id && this.recent.some((x) => x.status === 'pending' && x.commandId === undefined)) {
      this.early.set(d.command_id, d);
      if (this.early.size > MAX_RECENT) this.early.delete(this.early.keys().next().value as string);
    }
    // The stored history now has the outcome too (a redelivered response
    // from an earlier page load only shows up there).
    const sensorId = c?.sensorId ?? d.sensor_id;
    if (sensorId && this.history.has(sensorId)) void this.loadHistory(sensorId);
    this.changed.changed();
  }

  private settle(c: SentCommand, d: CommandResponseData): void {
    c.status = d.status;
    c.message = d.message;
    c.commandId = d.command_id;
    c.latencyMs = d.latency_ms;
    c.answeredAt = this.now();
  }

  async loadHistory(sensorId: string): Promise<void> {
    const prev = this.history.get(sensorId);
    this.history.set(sensorId, { records: prev?.records ?? [], loading: true });
    this.changed.changed();
    try {
      const res = await this.api.get<{ commands: CommandRecord[] } | CommandRecord[]>('/api/commands', {
        sensor_id: sensorId,
      });
      const records = Array.isArray(res) ? res : (res.commands ?? []);
      this.history.set(sensorId, { records, loading: false });
    } catch (err) {
      this.history.set(sensorId, { records: prev?.records ?? [], loading: false, error: errorText(err) });
    }
    this.changed.changed();
  }
}
