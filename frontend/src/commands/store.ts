// Commands sent from this page (queued → pending → success/error/timeout)
// and the stored command history per sensor from GET /api/commands.

import type { Api } from '../common/api';
import { errorText } from '../common/format';
import { type FrameBatcher, Observable } from '../common/frame';
import type { WsClient } from '../common/ws';
import { WsRequestError } from '../common/ws';
import type { CommandRecord, CommandResponseData, Envelope } from '../types';

export type LocalStatus = 'queued' | 'pending' | 'success' | 'error' | 'timeout';

export interface SentCommand {
  reqId: string;
  sensorId: string;
  action: string;
  status: LocalStatus;
  message?: string;
  commandId?: string;
  latencyMs?: number | null;
  issuedAt: number;
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

  constructor(batcher: FrameBatcher, ws: WsClient, api: Api) {
    this.changed = new Observable(batcher);
    this.ws = ws;
    this.api = api;
    ws.on<CommandResponseData>('command_response', (m) => this.onResponse(m));
    // Outcomes may have been stored while we were away and not replayed
    // (a resume replays readings, chat, alerts and direct messages only;
    // this user's own outcomes come again as acked deliveries).
    ws.reloadNeeded.on(() => {
      for (const id of this.history.keys()) void this.loadHistory(id);
    });
    ws.outboxChanged.on((outbox) => {
      const waiting = new Set(outbox.map((m) => String(m.id)));
      let any = false;
      for (const c of this.recent) {
        if (c.status === 'queued' && !waiting.has(c.reqId)) {
          c.status = 'pending';
          any = true;
        }
      }
      if (any) this.changed.changed();
    });
  }

  /** Commands sent from this page for one sensor, newest first. */
  sentFor(sensorId: string): SentCommand[] {
    return this.recent.filter((c) => c.sensorId === sensorId);
  }

  historyFor(sensorId: string): { records: CommandRecord[]; error?: string; loading: boolean } | undefined {
    return this.history.get(sensorId);
  }

  send(sensorId: string, action: string, params: Record<string, unknown> = {}): SentCommand {
    const { id, reply } = this.ws.request('command', { sensor_id: sensorId, action, params }, { queue: true });
    const c: SentCommand = {
      reqId: id,
      sensorId,
      action,
      status: this.ws.outbox.some((m) => m.id === id) ? 'queued' : 'pending',
      issuedAt: Date.now(),
    };
    this.recent = [c, ...this.recent].slice(0, MAX_RECENT);
    this.changed.changed();
    reply.then(
      (m) => {
        // command_sent: stored and published; the outcome comes as command_response.
        const d = m.data as { command_id?: string } | undefined;
        if (d?.command_id && !c.commandId) c.commandId = d.command_id;
        if (c.status === 'queued') c.status = 'pending';
        this.changed.changed();
      },
      (err: unknown) => {
        if (c.status !== 'queued' && c.status !== 'pending') return;
        if (err instanceof WsRequestError && err.code === 'timeout') {
          c.status = 'timeout';
          c.message = 'no answer from the server';
        } else {
          c.status = 'error';
          c.message = errorText(err);
        }
        this.changed.changed();
      },
    );
    return c;
  }

  private onResponse(m: Envelope<string, CommandResponseData>): void {
    const d = m.data;
    if (!d) return;
    const c = m.ref !== undefined ? this.recent.find((x) => x.reqId === String(m.ref)) : undefined;
    if (c) {
      c.status = d.status;
      c.message = d.message;
      c.commandId = d.command_id;
      c.latencyMs = d.latency_ms;
    }
    // The stored history now has the outcome too (a redelivered response
    // from an earlier page load only shows up there).
    const sensorId = c?.sensorId ?? d.sensor_id;
    if (sensorId && this.history.has(sensorId)) void this.loadHistory(sensorId);
    this.changed.changed();
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
