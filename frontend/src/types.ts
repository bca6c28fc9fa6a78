// Types mirroring the JSON of docs/protocol.md (the /ws protocol) and the
// REST API. Keep them in step with the server: field names are the wire
// names, timestamps are RFC 3339 strings as sent.

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
  /** The commit batch that stored it: the exact resume cursor. */
  seq?: number;
}

export interface SubscribeData {
  sensors: string[];
}

// ---- Commands -------------------------------------------------------------

export type CommandStatus = 'pending' | 'success' | 'error' | 'timeout';

export interface CommandRequestData {
  sensor_id: string;
  action: string;
  params: Record<string, unknown>;
}

export interface CommandResponseData {
  command_id: string;
  sensor_id?: string;
  action?: string;
  status: CommandStatus;
  message?: string;
  latency_ms?: number | null;
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
  | string;

export interface ErrorData {
  code: ErrorCode;
  message: string;
}

// ---- Rooms and chat -------------------------------------------------------

export type RoomKind = 'chat' | 'alerts';

export interface RoomInfo {
  room: string;
  kind: RoomKind;
  members: number;
  online: number;
  /** Present when the server tells whether the current user is a member. */
  member?: boolean;
  joined?: boolean;
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
  alert_id?: number | string | null;
  ts: string;
}

export interface JoinedData {
  room: string;
  members: RoomMember[];
  history: ChatMessage[];
}

export interface UserJoinedData {
  room: string;
  user: string;
  /** "online": a member came back; absent: joined the room. */
  reason?: string;
}

export interface UserLeftData {
  room: string;
  user: string;
  reason?: string;
}

export interface UserTypingData {
  room: string;
  user: string;
}

export interface HistoryData {
  room: string;
  messages: ChatMessage[];
}

export interface DirectMessage {
  id?: number;
  from?: string;
  user?: string;
  to: string;
  content: string;
  ts?: string;
}

export interface RoomDeletedData {
  room: string;
}

// ---- Alerts ---------------------------------------------------------------

export type AlertKind = 'threshold' | 'spike' | 'offline';
export type AlertSeverity = 'warning' | 'critical';
export type AlertState = 'open' | 'acknowledged' | 'resolved';

export interface Alert {
  id: number | string;
  sensor_id: string;
  metric: string;
  kind: AlertKind;
  severity: AlertSeverity;
  value: number | null;
  limit_or_score: number | null;
  state: AlertState;
  opened_at: string;
  updated_at: string;
  count: number;
  acked_by?: string | null;
  resolved_by?: string | null;
  resolved_at?: string | null;
  /** Increases with every change of any alert: the resume cursor of the alerts stream. */
  event_id?: number;
  /** On live messages only: kept open because it kept opening and resolving (docs/alerts.md#noise). */
  flapping?: boolean;
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
  reason: 'too_old' | 'too_many' | string;
  stream?: string;
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

export interface CommandRecord {
  command_id: string;
  sensor_id: string;
  action: string;
  params: Record<string, unknown> | null;
  issued_by: string;
  issued_at: string;
  status: CommandStatus;
  message?: string;
  responded_at?: string | null;
  latency_ms?: number | null;
}

export interface RestError {
  error: { code: string; message: string };
}
