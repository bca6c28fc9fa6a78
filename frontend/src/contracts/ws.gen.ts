// Generated from docs/asyncapi.yaml by tools/contracts/types.mjs: do not edit.
// `make contract-types` rewrites it; `make contracts` fails when it is stale.
// frontend/src/contracts/agree.ts checks frontend/src/types.ts against it.

/** components/schemas, by name. */
export interface Schemas {
  /** RFC 3339, UTC, milliseconds */
  Timestamp: string;
  /** client request id, echoed as ref */
  RequestID: string | number;
  /** the id of the request answered */
  Ref: string | number | null;
  RoomName: string;
  Content: string;
  Reading: {
    sensor_id: string;
    metric: string;
    value: number;
    unit?: string;
    /** microseconds */
    ts: string;
    /** the commit batch that stored it: the exact resume cursor (resume, readings.seq); absent on a reading not stored */
    seq?: number;
  };
  Alert: {
    id: number;
    sensor_id: string;
    metric: string;
    kind: "threshold" | "spike" | "offline";
    severity: "warning" | "critical";
    value: number;
    limit_or_score: number;
    state: "open" | "acknowledged" | "resolved";
    opened_at: Schemas["Timestamp"];
    updated_at: Schemas["Timestamp"];
    count: number;
    acked_by: string | null;
    resolved_by: string | null;
    resolved_at: Schemas["Timestamp"] | null;
    event_id: number;
    flapping?: boolean;
    /** only present when the alert opened while a silence covered it (stored and shown, not announced) */
    silence_id?: number;
  };
  Silence: {
    id: number;
    sensor_id: string;
    metric: string | null;
    kind: "threshold" | "spike" | "stale" | null;
    reason: string;
    created_by: string;
    created_at: Schemas["Timestamp"];
    until: Schemas["Timestamp"];
    ended_by: string | null;
    ended_at: Schemas["Timestamp"] | null;
  };
  ChatMessage: {
    id: number;
    room: Schemas["RoomName"];
    user: string;
    content: string;
    alert_id?: number;
    ts: Schemas["Timestamp"];
  };
  DirectMessage: {
    id: number;
    from: string;
    to: string;
    content: string;
    ts: Schemas["Timestamp"];
  };
  Room: {
    room: Schemas["RoomName"];
    kind: "chat" | "alerts";
    creator: string;
    created_at: Schemas["Timestamp"];
    fixed: boolean;
    members?: number;
    online?: number;
    member?: boolean;
  };
  ErrorCode: "invalid_json" | "unknown_type" | "bad_request" | "forbidden" | "rate_limited" | "not_found" | "conflict" | "internal" | "too_many_connections" | "limit_reached";
}

/** The `data` of every message a client sends, by `type` (undefined: no data). */
export interface ClientData {
  /** Confirm server messages that carry a top-level id */
  ack: undefined;
  /** Acknowledge an alert (analysts and above) */
  alert_ack: {
    alert_id: number | string;
  };
  /** Resolve an alert (analysts and above) */
  alert_resolve: {
    alert_id: number | string;
    note?: string;
  };
  /** First message (and later a fresh token on the open connection) */
  auth: {
    token: string;
    resume?: boolean;
  };
  /** Post to a room (analysts and above, members) */
  chat_message: {
    room: Schemas["RoomName"];
    content: Schemas["Content"];
    alert_id?: number;
  };
  /** Send a command to a device (operators and admins) */
  command: {
    sensor_id: string;
    action: string;
    /** the action's parameters, free-form, passed to the device as they are */
    params?: Record<string, unknown>;
  };
  /** Create a room (analysts and above) */
  create_room: {
    room: Schemas["RoomName"];
    kind?: "chat" | "alerts";
  };
  /** Delete a room (admins) */
  delete_room: {
    room: Schemas["RoomName"];
  };
  /** Message one user (analysts and above) */
  direct_message: {
    to: string;
    content: Schemas["Content"];
  };
  /** Older messages of a room */
  history: {
    room: Schemas["RoomName"];
    before?: number;
    limit?: number;
  };
  /** Join a room */
  join_room: {
    room: Schemas["RoomName"];
  };
  /** Leave a room */
  leave_room: {
    room: Schemas["RoomName"];
  };
  /** List every room with its counts */
  list_rooms: Record<string, never> | undefined;
  /** Application-level ping (a bare text frame `ping` works too) */
  ping: undefined;
  /** Replay what was missed since the last connection */
  resume: {
    readings?: {
      since: Schemas["Timestamp"];
      /** the highest reading seq seen; replays exactly from that commit batch on */
      seq?: number;
      sensors?: string[];
    };
    rooms?: Record<string, number>;
    alerts?: number;
    direct?: number;
  };
  /** Narrow or widen the readings stream */
  subscribe: {
    sensors: string[];
  };
  /** Typing notice; answered only when it has an id */
  typing: {
    room: Schemas["RoomName"];
  };
  /** Remove sensors from the readings stream */
  unsubscribe: {
    sensors: string[];
  };
}

/** The `data` of every message the server sends, by `type` (undefined: no data). */
export interface ServerData {
  /** A new or changed alert, posted to room alerts (acked; without id when replayed by resume) */
  alert: Schemas["Alert"];
  /** Reply to alert_ack and alert_resolve: the alert as it now is */
  alert_updated: Schemas["Alert"];
  /** Authentication failed, expired or revoked; close 4001 follows */
  auth_error: {
    message: string;
  };
  /** Authenticated (ref set when answering a re-auth) */
  auth_ok: {
    user: string;
    role: "viewer" | "analyst" | "operator" | "admin";
    expires_at: Schemas["Timestamp"];
  };
  /** Up to 64 queued messages in one frame, in order */
  batch: {
    type: string;
    id?: number;
    ref?: Schemas["Ref"];
    /** the message's data */
    data?: unknown;
  }[];
  /** A message posted in a room you are a member of */
  chat_message: Schemas["ChatMessage"];
  /** Reply to chat_message */
  chat_message_sent: {
    room: Schemas["RoomName"];
    id: number;
    ts: Schemas["Timestamp"];
  };
  /** The device answered, or timed out (acked) */
  command_response: {
    command_id: string;
    sensor_id: string;
    action: string;
    status: "pending" | "success" | "error" | "timeout";
    message?: string;
    latency_ms?: number;
  };
  /** The command is stored and published */
  command_sent: {
    command_id: string;
    sensor_id: string;
    action: string;
    status: "pending" | "success" | "error" | "timeout";
    message?: string;
    latency_ms?: number;
  };
  /** Reply to create_room */
  created: Schemas["Room"];
  /** Reply to delete_room */
  deleted: {
    room: Schemas["RoomName"];
  };
  /** A direct message sent or received (acked; without id when replayed by resume) */
  direct_message: Schemas["DirectMessage"];
  /** Reply to direct_message */
  direct_message_sent: {
    id: number;
    to: string;
    ts: Schemas["Timestamp"];
  };
  /** A request could not be served */
  error: {
    code: Schemas["ErrorCode"];
    message: string;
  };
  /** Readings were thinned for a slow client */
  gap: {
    thinned: number;
    series: {
      sensor_id: string;
      metric: string;
      from: string;
      to: string;
      thinned: number;
    }[];
  };
  /** Reply to history */
  history: {
    room: Schemas["RoomName"];
    messages: Schemas["ChatMessage"][];
  };
  /** Reply to join_room: members and the last 50 messages */
  joined: {
    room: Schemas["RoomName"];
    members: {
      user: string;
      online: boolean;
    }[];
    history: Schemas["ChatMessage"][];
  };
  /** Reply to leave_room */
  left: {
    room: Schemas["RoomName"];
  };
  /** Answer to ping */
  pong: undefined;
  /** A stored reading */
  reading: Schemas["Reading"];
  /** Nothing replayed; reload over REST */
  resume_failed: {
    reason: "too_old" | "too_many";
    stream: "readings" | "rooms" | "alerts" | "direct";
    max_age_seconds?: number;
    max?: number;
  };
  /** Replay done: counts per stream */
  resumed: {
    readings?: number;
    rooms?: Record<string, number>;
    alerts?: number;
    direct?: number;
  };
  /** A room was created (to everyone) */
  room_created: Schemas["Room"];
  /** A room was deleted (to everyone) */
  room_deleted: {
    room: Schemas["RoomName"];
    by: string;
  };
  /** Reply to list_rooms */
  room_list: {
    rooms: Schemas["Room"][];
  };
  /** A sensor's alert rules were replaced (to everyone; not acked, not replayed); clients showing it reload GET /api/sensors/{id}/rules */
  rules_changed: {
    sensor_id: string;
    updated_by: string;
    updated_at: Schemas["Timestamp"];
  };
  /** A silence was created or ended early (to everyone; not acked, not replayed; after a reconnect reload GET /api/silences) */
  silence: Schemas["Silence"];
  /** The readings filter now */
  subscribed: {
    sensors: string[];
    except?: string[];
  };
  /** Reply to typing with an id */
  typing_sent: {
    room: Schemas["RoomName"];
    forwarded: boolean;
  };
  /** A user joined the room or came online */
  user_joined: {
    room: Schemas["RoomName"];
    user: string;
    reason?: "joined" | "left" | "online" | "offline";
  };
  /** A user left the room or went offline */
  user_left: {
    room: Schemas["RoomName"];
    user: string;
    reason?: "joined" | "left" | "online" | "offline";
  };
  /** Someone is typing in a room */
  user_typing: {
    room: Schemas["RoomName"];
    user: string;
  };
}
