// All wiring in one visible place: one WebSocket client, one REST client,
// the stores, and what happens on login, reconnect and logout.
//
// On a reconnect the ws client resumes with the stores' cursors (what the
// page holds); the server replays what was missed as ordinary messages and
// the stores de-duplicate them. Views reload over REST only when the resume
// fails.
//
// The session: a minute before the token expires it is refreshed over REST
// and the new one is sent on the open socket. When the server ends the
// session (revoked, expired: auth_error and close 4001, or a 401) the page
// goes back to the login screen with a notice saying which, and never
// reconnects with the old token.

import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import { SilenceStore } from './alerts/silences';
import { AlertStore } from './alerts/store';
import { ChatStore } from './chat/store';
import { CommandStore } from './commands/store';
import { Api, Session, isMissingEndpoint } from './common/api';
import { errorText, parseTs } from './common/format';
import { FrameBatcher, Observable } from './common/frame';
import { Clock } from './common/hooks';
import { TokenRefresher } from './common/refresh';
import { type AuthFailureKind, WsClient, wsURL } from './common/ws';
import { registeredIds, type Device } from './sensors/devices';
import { fetchSpan } from './sensors/series';
import { SPARK_WINDOW_MS, SensorStore, sensorKey } from './sensors/store';
import { Emitter } from './common/emitter';
import type {
  Alert,
  AuthOkData,
  GapData,
  MeResponse,
  Reading,
  ResumeData,
  Role,
  RulesChangedData,
  Sensor,
  Silence,
} from './types';

/** Sparklines of this many tiles are backfilled over REST on load and reconnect. */
const BACKFILL_TILES = 48;
const BACKFILL_CONCURRENCY = 3;

/** What the login screen says when the session ended by itself. */
export const SESSION_NOTICE: Record<AuthFailureKind, string> = {
  revoked: 'Your session was ended; log in again.',
  expired: 'Your session expired; log in again.',
  invalid: 'Your session has ended; log in again.',
};

export class Services {
  readonly batcher = new FrameBatcher();
  readonly clock = new Clock(this.batcher);
  readonly session = new Session();
  readonly api = new Api(this.session);
  readonly ws = new WsClient({
    url: wsURL(),
    getToken: () => this.session.token,
    getResume: () => this.resumeCursors(),
  });
  readonly sensors = new SensorStore(this.batcher, (id, metric, from, to) => fetchSpan(this.api, id, metric, from, to));
  readonly alerts = new AlertStore(this.batcher);
  readonly silences = new SilenceStore(this.batcher, this.api);
  /** A sensor's rules were replaced (rules_changed; also fired with '' after a reconnect: reload any). */
  readonly rulesChanged = new Emitter<RulesChangedData>();
  readonly commands = new CommandStore(this.batcher, this.ws, this.api);
  readonly chat = new ChatStore(this.batcher, this.ws, this.api);
  readonly refresher = new TokenRefresher({
    refresh: () => this.api.refresh(),
    onRefreshed: (token) => {
      this.ws.reauth(token).catch((err) => console.warn('sending the refreshed token:', errorText(err)));
    },
    // api.unauthorized has fired too; either one ends the session.
    onUnauthorized: () => this.expire(SESSION_NOTICE.invalid),
  });
  /** Login state changes (login, logout, session expired). */
  readonly authChanged = new Observable(this.batcher);
  /** Notice when the session ends on its own ("session expired"). */
  loginNotice = '';
  me: { user: string; role: Role } | null = null;
  sensorsError = '';
  /** Ids of the registered MQTT devices, for the tiles' badge. */
  registered: Set<string> = new Set();
  /** Notify about new critical alerts with sound / a browser notification. */
  prefs = loadPrefs();
  audio?: AudioContext;
  private started = false;
  private loggingOut = false;
  /** The streams the last resume could not name a cursor for: reloaded over REST once it is answered. */
  private uncovered: ('readings' | 'alerts')[] = [];
  private readonly cleanups: (() => void)[] = [];

  constructor() {
    this.ws.on<Reading>('reading', (m) => m.data && this.sensors.applyReading(m.data));
    this.ws.on<GapData>('gap', (m) => m.data && this.sensors.applyGap(m.data));
    this.ws.on<Alert>('alert', (m) => m.data && this.alerts.apply(m.data));
    this.ws.on<Silence>('silence', (m) => m.data && this.silences.apply(m.data));
    this.ws.on<RulesChangedData>('rules_changed', (m) => m.data && this.rulesChanged.emit(m.data));
    this.alerts.coveredBySilence = (a) => this.silences.covering(a) !== undefined;
    this.silences.changed.subscribe(() => this.alerts.mutedChanged());
    this.ws.on<AuthOkData>('auth_ok', (m) => {
      // A resumed session whose /api/me failed (server restarting) learns
      // who it is here; a refreshed token may carry a new role.
      if (m.data?.user && (this.me?.user !== m.data.user || this.me?.role !== m.data.role)) {
        this.setMe(m.data.user, m.data.role);
        this.authChanged.changed();
      }
      if (m.data?.expires_at) this.refresher.schedule(m.data.expires_at);
    });
    this.ws.reloadNeeded.on(() => void this.reloadAll());
    this.ws.resumed.on(() => {
      // Silences and rule changes are not replayed: reload them after any reconnect.
      void this.silences.load();
      this.rulesChanged.emit({ sensor_id: '', updated_by: '', updated_at: '' });
      const uncovered = this.uncovered;
      this.uncovered = [];
      if (uncovered.includes('readings')) void this.loadSensors();
      if (uncovered.includes('alerts')) void this.loadAlerts();
    });
    this.ws.authError.on((f) => this.expire(SESSION_NOTICE[f.kind]));
    this.api.unauthorized.on(() => this.expire(SESSION_NOTICE.invalid));
    this.alerts.newCritical.on((a) => this.announce(a));
  }

  get loggedIn(): boolean {
    return this.session.token !== null;
  }

  async login(username: string, password: string): Promise<void> {
    const res = await this.api.login(username, password);
    this.loginNotice = '';
    this.setMe(res.user, res.role);
    this.start();
    this.refresher.schedule(res.expires_at);
    this.authChanged.changed();
  }

  /** Resumes a session whose token is still in sessionStorage (page reload). */
  async resume(): Promise<void> {
    if (!this.loggedIn) return;
    try {
      const me = await this.api.get<MeResponse>('/api/me');
      this.setMe(me.user, me.role);
      this.start();
    } catch (err) {
      if (this.loggedIn) {
        // Not a 401 (that logs out by itself): the server may be restarting.
        // Start anyway; the ws client retries and auth_ok tells who we are.
        console.warn('resume:', errorText(err));
        this.start();
      }
    }
    this.authChanged.changed();
  }

  /**
   * Revokes the token on the server, then forgets it here. The socket is
   * closed first: the revocation would otherwise reach it as "session
   * revoked" and end the session a second time, with a notice.
   */
  async logout(): Promise<void> {
    if (this.loggingOut) return;
    this.loggingOut = true;
    this.stop();
    await this.api.logout();
    this.session.token = null;
    this.me = null;
    this.authChanged.changed();
    // A fresh page drops every store and every cached message of this user.
    location.reload();
  }

  private expire(notice: string): void {
    if ((!this.loggedIn && !this.started) || this.loggingOut) return;
    this.stop();
    this.session.token = null;
    this.me = null;
    this.loginNotice = notice;
    this.authChanged.changed();
  }

  private setMe(user: string, role: Role): void {
    this.me = { user, role };
    this.chat.setMe(user);
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.clock.start();
    this.ws.start();
    const online = () => this.ws.setOnline(true);
    const offline = () => this.ws.setOnline(false);
    window.addEventListener('online', online);
    window.addEventListener('offline', offline);
    this.cleanups.push(() => {
      window.removeEventListener('online', online);
      window.removeEventListener('offline', offline);
    });
    if (typeof navigator !== 'undefined' && navigator.onLine === false) this.ws.setOnline(false);
    void this.reloadAll();
  }

  private stop(): void {
    if (!this.started) return;
    this.started = false;
    this.refresher.stop();
    this.ws.stop();
    this.clock.stop();
    this.silences.stop();
    for (const fn of this.cleanups.splice(0)) fn();
  }

  /**
   * What the page holds, per stream, for the resume after a reconnect. A
   * stream with no cursor (no reading at all yet; alerts that never
   * loaded) is left out and reloaded over REST once the resume is
   * answered.
   */
  resumeCursors(): ResumeData {
    const { data, uncovered } = collectResume(this.sensors, this.alerts, this.chat);
    this.uncovered = uncovered;
    return data;
  }

  /** Loads everything over REST: on start and after a reconnect that could not resume. */
  async reloadAll(): Promise<void> {
    this.rulesChanged.emit({ sensor_id: '', updated_by: '', updated_at: '' });
    await Promise.all([this.loadSensors(), this.loadAlerts(), this.chat.reload(), this.loadDevices(), this.silences.load()]);
  }

  /** Loads which sensors are registered devices; without the list no badge shows. */
  async loadDevices(): Promise<void> {
    try {
      this.registered = registeredIds(await this.api.get<{ devices: Device[] }>('/api/devices'));
    } catch {
      this.registered = new Set();
    }
    this.sensors.keysChanged.changed();
  }

  async loadSensors(): Promise<void> {
    try {
      const res = await this.api.get<Sensor[] | { sensors: Sensor[] }>('/api/sensors');
      const list = Array.isArray(res) ? res : (res.sensors ?? []);
      this.sensors.applySnapshot(list);
      this.sensorsError = '';
    } catch (err) {
      this.sensorsError = `Could not load sensors: ${errorText(err)}`;
      this.sensors.keysChanged.changed();
      return;
    }
    await this.backfill();
  }

  /** Fills the gap in the first tiles' sparklines (bounded: a few requests at a time). */
  private async backfill(): Promise<void> {
    const keys = this.sensors.keys.slice(0, BACKFILL_TILES);
    const from = new Date(Date.now() - SPARK_WINDOW_MS).toISOString();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < keys.length && this.started) {
        const s = this.sensors.get(keys[next++]);
        if (!s) continue;
        try {
          const res = await this.api.get<{ readings: Reading[] }>(
            `/api/sensors/${encodeURIComponent(s.sensorId)}/readings`,
            { metric: s.metric, from, limit: 600 },
          );
          const pts = (res.readings ?? [])
            .map((r) => ({ t: parseTs(r.ts), v: r.value }))
            .filter((p) => Number.isFinite(p.t))
            .sort((a, b) => a.t - b.t);
          this.sensors.backfill(sensorKey(s.sensorId, s.metric), pts);
        } catch {
          return; // the live stream fills the sparklines anyway
        }
      }
    };
    await Promise.all(Array.from({ length: BACKFILL_CONCURRENCY }, worker));
  }

  async loadAlerts(): Promise<void> {
    try {
      // Resolved ones too: those nobody acknowledged still need attention,
      // and the rest are the history view.
      const [open, acked, resolved] = await Promise.all(
        ['open', 'acknowledged', 'resolved'].map((state) =>
          this.api.get<{ alerts: Alert[] } | Alert[]>('/api/alerts', { state, limit: state === 'resolved' ? 100 : 200 }),
        ),
      );
      const list = (x: { alerts: Alert[] } | Alert[]) => (Array.isArray(x) ? x : (x.alerts ?? []));
      this.alerts.availability = 'available';
      this.alerts.loadError = '';
      const active = [...list(open), ...list(acked)];
      this.alerts.replaceActive(active);
      for (const a of list(resolved)) this.alerts.apply(a, false);
      if (this.alerts.eventCursor === undefined && active.length === 0) await this.loadAlertCursor();
    } catch (err) {
      if (isMissingEndpoint(err)) this.alerts.availability = 'missing';
      else this.alerts.loadError = `Could not load alerts: ${errorText(err)}`;
      this.alerts.changed.changed();
    }
  }

  /**
   * With no live alert to take it from, the alerts cursor is the newest
   * alert's event_id (any event_id the server showed is a safe place to
   * resume from: every later change has a higher one), or 0 when there is
   * no alert at all. Without it the next resume could not name the stream.
   */
  private async loadAlertCursor(): Promise<void> {
    try {
      const res = await this.api.get<{ alerts: Alert[] } | Alert[]>('/api/alerts', { limit: 1 });
      const list = Array.isArray(res) ? res : (res.alerts ?? []);
      if (list.length === 0) this.alerts.noteEventId(0);
      else if (typeof list[0].event_id === 'number') this.alerts.noteEventId(list[0].event_id);
    } catch {
      // The resume leaves alerts out and they reload once it is answered.
    }
  }

  setPrefs(p: Partial<Prefs>): void {
    this.prefs = { ...this.prefs, ...p };
    try {
      localStorage.setItem('watchroom.prefs', JSON.stringify(this.prefs));
    } catch {
      // no storage
    }
    this.authChanged.changed();
  }

  private announce(a: Alert): void {
    if (this.prefs.sound) beep(this);
    if (this.prefs.notify && typeof Notification !== 'undefined' && Notification.permission === 'granted') {
      try {
        new Notification(`Critical alert: ${a.sensor_id} ${a.metric}`, {
          body: `${a.kind} — value ${a.value ?? '?'} (limit ${a.limit_or_score ?? '?'})`,
          tag: 'watchroom-alert-' + a.id,
        });
      } catch {
        // some browsers only allow notifications from a service worker
      }
    }
  }
}

/** The resume request of what the stores hold, and the streams they have no cursor for. */
export function collectResume(
  sensors: Pick<SensorStore, 'since' | 'latestSeq'>,
  alerts: Pick<AlertStore, 'eventCursor'>,
  chat: Pick<ChatStore, 'roomCursors' | 'directCursor'>,
): { data: ResumeData; uncovered: ('readings' | 'alerts')[] } {
  const data: ResumeData = {};
  const uncovered: ('readings' | 'alerts')[] = [];
  // No sensors list: the connection's subscription applies.
  // seq resumes by commit order, exactly; since alone (readings seen only
  // over REST) by timestamp.
  const since = sensors.since;
  if (since) data.readings = sensors.latestSeq > 0 ? { since, seq: sensors.latestSeq } : { since };
  else uncovered.push('readings');
  const rooms = chat.roomCursors();
  if (Object.keys(rooms).length) data.rooms = rooms;
  if (alerts.eventCursor !== undefined) data.alerts = alerts.eventCursor;
  else uncovered.push('alerts');
  // Direct messages not acked yet come again after auth_ok anyway; with
  // none seen there is nothing to count from.
  if (chat.directCursor !== undefined) data.direct = chat.directCursor;
  return { data, uncovered };
}

export interface Prefs {
  sound: boolean;
  notify: boolean;
}

function loadPrefs(): Prefs {
  try {
    const p = JSON.parse(localStorage.getItem('watchroom.prefs') ?? '{}') as Partial<Prefs>;
    return { sound: p.sound === true, notify: p.notify === true };
  } catch {
    return { sound: false, notify: false };
  }
}

/** A short two-tone beep, generated (no audio file to ship). */
function beep(holder: { audio?: AudioContext }): void {
  try {
    holder.audio ??= new AudioContext();
    const ctx = holder.audio;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.setValueAtTime(880, ctx.currentTime);
    osc.frequency.setValueAtTime(660, ctx.currentTime + 0.12);
    gain.gain.setValueAtTime(0.08, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.3);
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.3);
  } catch {
    // audio unavailable
  }
}

export const ServicesContext = createContext<Services | null>(null);

export function useServices(): Services {
  const s = useContext(ServicesContext);
  if (!s) throw new Error('useServices outside ServicesContext');
  return s;
}
