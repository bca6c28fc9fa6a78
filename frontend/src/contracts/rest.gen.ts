// Generated from docs/openapi.yaml by tools/contracts/types.mjs: do not edit.
// `make contract-types` rewrites it; `make contracts` fails when it is stale.
// frontend/src/contracts/agree.ts checks frontend/src/types.ts against it.

/** components/schemas, by name. */
export interface Schemas {
  Error: {
    error: {
      code: string;
      message: string;
    };
  };
  Login: {
    token: string;
    expires_at: string;
    user: string;
    role: Schemas["Role"];
  };
  Role: "viewer" | "analyst" | "operator" | "admin";
  Sensor: {
    sensor_id: string;
    metric: string;
    unit?: string;
    first_seen: string;
    last_seen: string;
    last_value: number;
  };
  Reading: {
    sensor_id: string;
    metric: string;
    value: number;
    unit?: string;
    ts: string;
  };
  Bucket: {
    ts: string;
    min: number;
    avg: number;
    max: number;
    count: number;
  };
  /** command_id and params are shown to operators and admins only */
  Command: {
    command_id?: string;
    sensor_id: string;
    action: string;
    /** the action's parameters as sent, free-form */
    params?: Record<string, unknown> | null;
    issued_by: string;
    issued_at: string;
    status: "pending" | "success" | "error" | "timeout";
    /** the device's answer, or why it failed or timed out */
    message?: string;
    responded_at?: string;
    /** from publish to the device's answer (or the timeout) */
    latency_ms?: number;
  };
  Room: {
    room: string;
    kind: "chat" | "alerts";
    creator: string;
    created_at: string;
    fixed: boolean;
    members?: number;
    online?: number;
    member?: boolean;
  };
  ChatMessage: {
    id: number;
    room: string;
    user: string;
    content: string;
    alert_id?: number;
    ts: string;
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
    opened_at: string;
    updated_at: string;
    count: number;
    acked_by: string | null;
    resolved_by: string | null;
    resolved_at: string | null;
    event_id: number;
    /** only present when the alert opened while a silence covered it (stored and shown, not announced) */
    silence_id?: number;
  };
  /** a sensor's stored rules, and what applies where none is stored (docs/alerts.md) */
  Rules: {
    sensor_id: string;
    rules: Schemas["Rule"][];
    defaults: Schemas["RuleDefaults"];
  };
  /** one stored rule; only the fields of its kind are present (min, max, resolve_after for threshold; k, warmup, resolve_after for spike; after_seconds for stale), an absent one takes the default */
  Rule: {
    sensor_id: string;
    metric: string;
    kind: Schemas["RuleKind"];
    enabled: boolean;
    min?: number;
    max?: number;
    /** standard deviations */
    k?: number;
    /** readings before a spike may fire */
    warmup?: number;
    after_seconds?: number;
    /** consecutive normal readings before the alert resolves itself */
    resolve_after?: number;
    updated_by?: string;
    updated_at: string;
  };
  /** one rule as PUT takes it; a field that does not apply to its kind, or an unknown one, is refused */
  RuleIn: {
    metric: string;
    kind: Schemas["RuleKind"];
    /** default true */
    enabled?: boolean;
    min?: number;
    max?: number;
    k?: number;
    warmup?: number;
    after_seconds?: number;
    resolve_after?: number;
    /** accepted and ignored (as GET returned it) */
    sensor_id?: unknown;
    /** accepted and ignored (as GET returned it) */
    updated_by?: unknown;
    /** accepted and ignored (as GET returned it) */
    updated_at?: unknown;
  };
  /** stale is the rule whose alerts have kind offline */
  RuleKind: "threshold" | "spike" | "stale";
  /** what applies to a kind where no rule of it is stored */
  RuleDefaults: {
    threshold: {
      enabled: boolean;
      resolve_after: number;
    };
    spike: {
      enabled: boolean;
      k: number;
      warmup: number;
      resolve_after: number;
    };
    stale: {
      enabled: boolean;
      min_after_seconds: number;
      /** times the sensor's usual interval */
      interval_factor: number;
    };
  };
  Silence: {
    id: number;
    sensor_id: string;
    /** null with kind null - the whole sensor */
    metric: string | null;
    kind: "threshold" | "spike" | "stale" | null;
    reason: string;
    created_by: string;
    created_at: string;
    until: string;
    ended_by: string | null;
    ended_at: string | null;
  };
  Device: {
    id: string;
    active: boolean;
    created_by: string;
    created_at: string;
    revoked_at: string | null;
  };
  Stats: {
    active_connections: number;
    messages_per_minute: number;
    total_messages: number;
    failed_deliveries: number;
    average_connection_duration_seconds: number;
    uptime_seconds: number;
    closed_connections: number;
    data?: Schemas["DataStats"];
  };
  /** Raw partitions, rollups and retention (docs/storage.md, Retention); every instance reports the same database. */
  DataStats: {
    /** size of every raw partition, indexes included */
    raw_bytes: number;
    raw_partitions: number;
    /** readings waiting in the default partition; should stay near zero */
    default_partition_rows: number;
    /** start of the oldest day kept; absent with no day partition */
    oldest_raw_partition_from?: string;
    rollup_1m_bytes: number;
    rollup_1h_bytes: number;
    /** every raw reading retention removed is older; readings before it are stored only where the rollups can still tell a repeat (year 1 until the first drop) */
    raw_horizon: string;
    /** totals of data_drops by kind and reason */
    dropped: ({
      kind: "raw" | "1m" | "1h";
      reason: "age" | "size";
      drops: number;
      rows: number;
      bytes: number;
      partitions: number;
    })[];
    /** the last ten drops, newest first */
    last_drops: ({
      at: string;
      kind: "raw" | "1m" | "1h";
      reason: "age" | "size";
      /** a dropped partition, or a default partition (readings_default, readings_1m_default, readings_1h_default) whose rows past retention were deleted */
      target: string;
      /** everything before it went */
      upto: string;
      /** exact for row deletes, the planner's estimate for a partition */
      rows: number;
      bytes: number;
    })[];
  };
}

/** The JSON bodies of every route, by "METHOD path", every status but those of the shared Error schema. */
export interface RestResponses {
  /** Log in: a token for /ws and REST */
  "POST /api/login": Schemas["Login"];
  /** The caller */
  "GET /api/me": {
    user: string;
    role: Schemas["Role"];
    expires_at: string;
  };
  /** A fresh token with the caller's current role */
  "POST /api/refresh": Schemas["Login"];
  /** Every sensor metric */
  "GET /api/sensors": Schemas["Sensor"][];
  /** Readings of a sensor, or buckets with bucket= */
  "GET /api/sensors/{id}/readings": {
    sensor_id?: string;
    metric?: string;
    readings: Schemas["Reading"][];
  } | {
    sensor_id?: string;
    metric?: string;
    bucket?: string;
    buckets: Schemas["Bucket"][];
  };
  /** Commands, newest first */
  "GET /api/commands": {
    commands: Schemas["Command"][];
  };
  /** Every room with counts */
  "GET /api/rooms": {
    rooms: Schemas["Room"][];
  };
  /** A page of a room's messages, oldest first */
  "GET /api/rooms/{room}/messages": {
    room: string;
    messages: Schemas["ChatMessage"][];
  };
  /** Alerts, newest first */
  "GET /api/alerts": {
    alerts: Schemas["Alert"][];
  };
  /** An alert, its resolve note and its discussion */
  "GET /api/alerts/{id}": {
    alert: Schemas["Alert"];
    note: string | null;
    messages: Schemas["ChatMessage"][];
  };
  /** A sensor's alert rules, defaults included */
  "GET /api/sensors/{id}/rules": Schemas["Rules"];
  /** Replace a sensor's alert rules (operators) */
  "PUT /api/sensors/{id}/rules": Schemas["Rules"];
  /** Silences, newest first (in force, ended and expired) */
  "GET /api/silences": {
    silences: Schemas["Silence"][];
  };
  /** Silence a sensor or one of its rules until a time (operators); docs/alerts.md, Silences */
  "POST /api/silences": {
    silence: Schemas["Silence"];
  };
  /** End a silence early (operators) */
  "DELETE /api/silences/{id}": {
    silence: Schemas["Silence"];
  };
  /** Registered MQTT devices */
  "GET /api/devices": {
    devices: Schemas["Device"][];
  };
  /** Register a device (admins); the secret is shown only here */
  "POST /api/devices": {
    id: string;
    secret: string;
  };
  /** Connection and message statistics */
  "GET /api/stats": Schemas["Stats"];
  /** 200 while the process runs */
  "GET /healthz": {
    status: "ok";
  };
  /** 200 when PostgreSQL and both MQTT connections are up */
  "GET /readyz": {
    ready: boolean;
    /** by check (database, mqtt ingest, mqtt devices), "ok" or what failed */
    checks: Record<string, string>;
  };
}

/** The JSON request body of every route that takes one, by "METHOD path". */
export interface RestRequests {
  /** Log in: a token for /ws and REST */
  "POST /api/login": {
    username: string;
    password: string;
  };
  /** Replace a sensor's alert rules (operators) */
  "PUT /api/sensors/{id}/rules": {
    /** the sensor's complete rule set; [] removes every rule */
    rules: Schemas["RuleIn"][];
    /** accepted and ignored, so that what GET returned can be sent back */
    sensor_id?: unknown;
    /** accepted and ignored, so that what GET returned can be sent back */
    defaults?: unknown;
  };
  /** Silence a sensor or one of its rules until a time (operators); docs/alerts.md, Silences */
  "POST /api/silences": {
    sensor_id: string;
    /** with kind, silences one rule; without both, the whole sensor */
    metric?: string;
    kind?: "threshold" | "spike" | "stale";
    /** the end; or duration_seconds */
    until?: string;
    /** from now; or until */
    duration_seconds?: number;
    reason?: string;
  };
  /** Register a device (admins); the secret is shown only here */
  "POST /api/devices": {
    id: string;
  };
}
