// Types mirroring the JSON of docs/protocol.md (the /ws protocol) and the
// REST API: field names are the wire names, timestamps are RFC 3339
// strings as sent. They are held to the contracts at compile time:
// ClientData, ServerData, RestResponses and RestRequests at the end of this
// file must agree, type by type and field by field, with what
// docs/asyncapi.yaml and docs/openapi.yaml say (contracts/agree.ts; the
// contracts are checked against the real server in Go). After changing a
// contract: `make contract-types`, then `npm run typecheck` names every
// field that differs.

export type Role = 'viewer' | 'analyst' | 'operator' | 'admin';

const roleRank: Record<Role, number> = { viewer: 1, analyst: 2, operator: 3, admin: 4 };

/** Reports whether role grants everything min grants (viewer < analyst < operator < admin). */
export function roleAtLeast(role: string | undefined, min: Role): boolean {
  const r = roleRank[role as Role];
  return r !== undefined && r >= roleRank[min];
}

/** A request or reply id: the server accepts strings and numbers. */
export type MsgId = string | number;

/** Every frame is one envelope. */
export interface Envelope<T extends string = string, D = unknown> {
  type: T;
  id?: MsgId;
  ref?: MsgId;
  data?: D;
}

// ---- Auth -----------------------------------------------------------------

export interface AuthData {
  token: string;
  /** On a reconnect that sends `resume` right after auth_ok: the server holds live messages until the replay. */
  resume?: boolean;
}
export interface AuthOkData {
  user: string;
  role: Role;
  expires_at: string;
}
export interface AuthErrorData {
  message: string;
}

// ---- Readings -------------------------------------------------------------

export interface Reading {
  sensor_id: string;
  metric: string;
  value: number;
  unit?: string;
  ts: string;
  /** The commit batch that stored it: the exact resume cursor (/ws only). */
  seq?: number;
}

/** A reading as REST returns it: without seq. */
export type StoredReading = Omit<Reading, 'seq'>;

export interface SubscribeData {
  sensors: string[];
}

/** The readings filter now: '*' means every sensor but those in except. */
export interface SubscribedData {
  sensors: string[];
  except?: string[];
}

// ---- Commands -------------------------------------------------------------

export type CommandStatus = 'pending' | 'success' | 'error' | 'timeout';

export interface CommandRequestData {
  sensor_id: string;
  action: string;
  params?: Record<string, unknown>;
}

/** command_sent (status pending) and command_response. */
export interface CommandResponseData {
  command_id: string;
  sensor_id: string;
  action: string;
  status: CommandStatus;
  message?: string;
  latency_ms?: number;
}

// ---- Errors ---------------------------------------------------------------

export type ErrorCode =
  | 'invalid_json'
  | 'unknown_type'
  | 'bad_request'
  | 'forbidden'
  | 'rate_limited'
  | 'not_found'
  | 'conflict'
  | 'internal'
  | 'too_many_connections'
  | 'limit_reached';

export interface ErrorData {
  code: ErrorCode;
  message: string;
}

// ---- Rooms and chat -------------------------------------------------------

export type RoomKind = 'chat' | 'alerts';

/** A room; lists add its counts, and member for the user who asked. */
export interface RoomInfo {
  room: string;
  kind: RoomKind;
  creator: string;
  created_at: string;
  /** general and alerts: cannot be deleted, every user is a member. */
  fixed: boolean;
  members?: number;
  online?: number;
  /** Present when the server tells whether the current user is a member. */
  member?: boolean;
}

export interface RoomListData {
  rooms: RoomInfo[];
}

/** room_created: one new room, sent to everyone (never the whole list). */
export type RoomCreatedData = RoomInfo;

export interface RoomMember {
  user: string;
  online: boolean;
}

export interface ChatMessage {
  id: number;
  room: string;
  user: string;
  content: string;
  alert_id?: number;
  ts: string;
}

export interface ChatMessageRequestData {
  room: string;
  content: string;
  alert_id?: number;
}

export interface ChatMessageSentData {
  room: string;
  id: number;
  ts: string;
}

export interface JoinedData {
  room: string;
  members: RoomMember[];
  history: ChatMessage[];
}

export type PresenceReason = 'joined' | 'left' | 'online' | 'offline';

export interface UserJoinedData {
  room: string;
  user: string;
  /** "online": a member came back; absent: joined the room. */
  reason?: PresenceReason;
}

export interface UserLeftData {
  room: string;
  user: string;
  /** "offline": a member went away; absent or "left": left the room. */
  reason?: PresenceReason;
}

export interface UserTypingData {
  room: string;
  user: string;
}

export interface TypingSentData {
  room: string;
  /** Whether it went out (typing notices are rate limited). */
  forwarded: boolean;
}

export interface HistoryRequestData {
  room: string;
  /** Messages with a smaller id. */
  before?: number;
  limit?: number;
}

export interface HistoryData {
  room: string;
  messages: ChatMessage[];
}

export interface DirectMessage {
  id: number;
  from: string;
  to: string;
  content: string;
  ts: string;
}

export interface DirectMessageRequestData {
  to: string;
  content: string;
}

export interface DirectMessageSentData {
  id: number;
  to: string;
  ts: string;
}

/** join_room, leave_room, typing, delete_room; left and deleted. */
export interface RoomRef {
  room: string;
}

export interface CreateRoomData {
  room: string;
  kind?: RoomKind;
}

export interface RoomDeletedData {
  room: string;
  by: string;
}

// ---- Alerts ---------------------------------------------------------------

export type AlertKind = 'threshold' | 'spike' | 'offline';
export type AlertSeverity = 'warning' | 'critical';
export type AlertState = 'open' | 'acknowledged' | 'resolved';

export interface Alert {
  id: number;
  sensor_id: string;
  metric: string;
  kind: AlertKind;
  severity: AlertSeverity;
  value: number;
  limit_or_score: number;
  state: AlertState;
  opened_at: string;
  updated_at: string;
  count: number;
  acked_by: string | null;
  resolved_by: string | null;
  resolved_at: string | null;
  /** Increases with every change of any alert: the resume cursor of the alerts stream. */
  event_id: number;
  /** On live messages only: kept open because it kept opening and resolving (docs/alerts.md#noise). */
  flapping?: boolean;
  /** Present when it opened while a silence covered it: shown, not announced (docs/alerts.md#silences). */
  silence_id?: number;
}

// ---- Rules and silences (docs/alerts.md; the rules' types are below) ------

/** POST /api/silences: metric and kind both (one rule) or neither (the sensor); until or duration_seconds. */
export interface NewSilence {
  sensor_id: string;
  metric?: string;
  kind?: RuleKind;
  until?: string;
  duration_seconds?: number;
  reason?: string;
}

/** The data of the rules_changed message. */
export interface RulesChangedData {
  sensor_id: string;
  updated_by: string;
  updated_at: string;
}

/** A silence: of the whole sensor (metric and kind null) or of one rule. */
export interface Silence {
  id: number;
  sensor_id: string;
  metric: string | null;
  kind: RuleKind | null;
  reason: string;
  created_by: string;
  created_at: string;
  until: string;
  ended_by: string | null;
  ended_at: string | null;
}

/** An alert as REST returns it: flapping is not stored. */
export type StoredAlert = Omit<Alert, 'flapping'>;

/** alert_ack: the id as a number or a string of digits. */
export interface AlertAckData {
  alert_id: number | string;
}

export interface AlertResolveData {
  alert_id: number | string;
  /** Kept with the alert (GET /api/alerts/{id}). */
  note?: string;
}

// ---- Resuming after a reconnect ------------------------------------------

/** What the client has seen last, per stream; an omitted stream is not replayed. */
export interface ResumeData {
  /** Readings with ts >= since; sensors omitted: the connection's subscription. */
  readings?: { since: string; seq?: number; sensors?: string[] };
  /** Per room, the id of the last chat message held. */
  rooms?: Record<string, number>;
  /** The highest alert event_id seen. */
  alerts?: number;
  /** The highest direct message data.id seen. */
  direct?: number;
}

/** How many messages of each stream were replayed. */
export interface ResumedData {
  readings?: number;
  rooms?: Record<string, number>;
  alerts?: number;
  direct?: number;
}

export interface ResumeFailedData {
  reason: 'too_old' | 'too_many';
  stream: 'readings' | 'rooms' | 'alerts' | 'direct';
  max_age_seconds?: number;
  max?: number;
}

// ---- Thinning ---------------------------------------------------------------

export interface GapSeries {
  sensor_id: string;
  metric: string;
  /** Bounds of the timestamps of the readings not sent. */
  from: string;
  to: string;
  thinned: number;
}

export interface GapData {
  thinned: number;
  series: GapSeries[];
}

// ---- REST -----------------------------------------------------------------

export interface LoginResponse {
  token: string;
  expires_at: string;
  user: string;
  role: Role;
}

/** POST /api/refresh: a fresh token for the same user, with the role they have now. */
export type RefreshResponse = LoginResponse;

export interface MeResponse {
  user: string;
  role: Role;
  expires_at: string;
}

export interface Sensor {
  sensor_id: string;
  metric: string;
  unit?: string;
  first_seen: string;
  last_seen: string;
  last_value: number;
}

export interface Bucket {
  ts: string;
  min: number;
  avg: number;
  max: number;
  count: number;
}

/** A command as GET /api/commands lists it; command_id and params for operators and admins only. */
export interface CommandRecord {
  command_id?: string;
  sensor_id: string;
  action: string;
  params?: Record<string, unknown> | null;
  issued_by: string;
  issued_at: string;
  status: CommandStatus;
  message?: string;
  responded_at?: string;
  latency_ms?: number;
}

export interface RestError {
  error: { code: string; message: string };
}

export type RuleKind = 'threshold' | 'spike' | 'stale';

/** The settings of a rule; only those of its kind apply (docs/alerts.md). */
interface RuleSettings {
  metric: string;
  kind: RuleKind;
  /** threshold */
  min?: number;
  max?: number;
  /** spike: standard deviations, and readings before one may fire */
  k?: number;
  warmup?: number;
  /** stale */
  after_seconds?: number;
  /** threshold and spike: normal readings before the alert resolves itself */
  resolve_after?: number;
}

/** A stored alert rule; only the fields of its kind are present. */
export interface AlertRule extends RuleSettings {
  sensor_id: string;
  enabled: boolean;
  updated_by?: string;
  updated_at: string;
}

/** A rule as PUT /api/sensors/{id}/rules takes it (enabled: default true). */
export interface AlertRuleIn extends RuleSettings {
  enabled?: boolean;
  /** Accepted and ignored, so that a rule GET returned can be sent back. */
  sensor_id?: unknown;
  updated_by?: unknown;
  updated_at?: unknown;
}

/** What applies to a kind where no rule of it is stored. */
export interface RuleDefaults {
  threshold: { enabled: boolean; resolve_after: number };
  spike: { enabled: boolean; k: number; warmup: number; resolve_after: number };
  stale: { enabled: boolean; min_after_seconds: number; interval_factor: number };
}

export interface RulesResponse {
  sensor_id: string;
  rules: AlertRule[];
  defaults: RuleDefaults;
}

export interface Device {
  id: string;
  active: boolean;
  created_by: string;
  created_at: string;
  revoked_at: string | null;
}

export type DropKind = 'raw' | '1m' | '1h';
export type DropReason = 'age' | 'size';

/** GET /api/stats: the hub's counters, and storage when the store reports it. */
export interface StatsResponse {
  active_connections: number;
  messages_per_minute: number;
  total_messages: number;
  failed_deliveries: number;
  average_connection_duration_seconds: number;
  uptime_seconds: number;
  closed_connections: number;
  data?: {
    raw_bytes: number;
    raw_partitions: number;
    default_partition_rows: number;
    oldest_raw_partition_from?: string;
    rollup_1m_bytes: number;
    rollup_1h_bytes: number;
    /** Every raw reading retention removed is older (docs/storage.md). */
    raw_horizon: string;
    dropped: { kind: DropKind; reason: DropReason; drops: number; rows: number; bytes: number; partitions: number }[];
    last_drops: {
      at: string;
      kind: DropKind;
      reason: DropReason;
      target: string;
      upto: string;
      rows: number;
      bytes: number;
    }[];
  };
}

export interface ReadyResponse {
  ready: boolean;
  /** By check: "ok" or what failed. */
  checks: Record<string, string>;
}

// ---- The contracts, message by message and route by route ----------------
// contracts/agree.ts holds these four to docs/asyncapi.yaml and
// docs/openapi.yaml (through the generated contracts/*.gen.ts): a message
// type or route missing on either side, a field only on one side, a field
// optional on one side only, or a field of another type fails
// `npm run typecheck` with its path.

/** The data of every message a client sends, by type (undefined: none). */
export interface ClientData {
  ack: undefined;
  alert_ack: AlertAckData;
  alert_resolve: AlertResolveData;
  auth: AuthData;
  chat_message: ChatMessageRequestData;
  command: CommandRequestData;
  create_room: CreateRoomData;
  delete_room: RoomRef;
  direct_message: DirectMessageRequestData;
  history: HistoryRequestData;
  join_room: RoomRef;
  leave_room: RoomRef;
  list_rooms: Record<string, never> | undefined;
  ping: undefined;
  resume: ResumeData;
  subscribe: SubscribeData;
  typing: RoomRef;
  unsubscribe: SubscribeData;
}

/** The data of every message the server sends, by type (undefined: none). */
export interface ServerData {
  alert: Alert;
  alert_updated: Alert;
  auth_error: AuthErrorData;
  auth_ok: AuthOkData;
  /** Each item is one message as it would come alone. */
  batch: { type: string; id?: number; ref?: MsgId | null; data?: unknown }[];
  chat_message: ChatMessage;
  chat_message_sent: ChatMessageSentData;
  command_response: CommandResponseData;
  command_sent: CommandResponseData;
  created: RoomInfo;
  deleted: RoomRef;
  direct_message: DirectMessage;
  direct_message_sent: DirectMessageSentData;
  error: ErrorData;
  gap: GapData;
  history: HistoryData;
  joined: JoinedData;
  left: RoomRef;
  pong: undefined;
  reading: Reading;
  resume_failed: ResumeFailedData;
  resumed: ResumedData;
  room_created: RoomCreatedData;
  room_deleted: RoomDeletedData;
  room_list: RoomListData;
  subscribed: SubscribedData;
  typing_sent: TypingSentData;
  user_joined: UserJoinedData;
  user_left: UserLeftData;
  user_typing: UserTypingData;
  rules_changed: RulesChangedData;
  silence: Silence;
}

export type ClientMessageType = keyof ClientData;
export type ServerMessageType = keyof ServerData;

/** The JSON bodies of every route, by "METHOD path" (errors aside: RestError). */
export interface RestResponses {
  'POST /api/login': LoginResponse;
  'GET /api/me': MeResponse;
  'POST /api/refresh': RefreshResponse;
  'GET /api/sensors': Sensor[];
  'GET /api/sensors/{id}/readings':
    | { sensor_id?: string; metric?: string; readings: StoredReading[] }
    | { sensor_id?: string; metric?: string; bucket?: string; buckets: Bucket[] };
  'GET /api/commands': { commands: CommandRecord[] };
  'GET /api/rooms': { rooms: RoomInfo[] };
  'GET /api/rooms/{room}/messages': { room: string; messages: ChatMessage[] };
  'GET /api/alerts': { alerts: StoredAlert[] };
  'GET /api/alerts/{id}': { alert: StoredAlert; note: string | null; messages: ChatMessage[] };
  'GET /api/sensors/{id}/rules': RulesResponse;
  'PUT /api/sensors/{id}/rules': RulesResponse;
  'GET /api/silences': { silences: Silence[] };
  'POST /api/silences': { silence: Silence };
  'DELETE /api/silences/{id}': { silence: Silence };
  'GET /api/devices': { devices: Device[] };
  'POST /api/devices': { id: string; secret: string };
  'GET /api/stats': StatsResponse;
  'GET /healthz': { status: 'ok' };
  'GET /readyz': ReadyResponse;
}

/** The JSON request bodies, by "METHOD path". */
export interface RestRequests {
  'POST /api/login': { username: string; password: string };
  'PUT /api/sensors/{id}/rules': { rules: AlertRuleIn[]; sensor_id?: unknown; defaults?: unknown };
  'POST /api/silences': NewSilence;
  'POST /api/devices': { id: string };
}
