-- +goose Up

-- sensor_id and metric use the "C" collation (plain byte order): they are
-- ASCII identifiers (model.ValidID), and byte comparisons keep the key
-- lookups and sorts of the ingest path cheap whatever the database's
-- default locale is.

-- Latest known state of every sensor metric, maintained by the ingest path
-- in the same transaction that inserts the readings. Besides answering "which
-- sensors exist", it is the list of metrics per sensor that lets a readings
-- query over all metrics of one sensor walk the readings primary key metric
-- by metric.
CREATE TABLE sensors (
    sensor_id  text COLLATE "C" NOT NULL,
    metric     text COLLATE "C" NOT NULL,
    unit       text             NOT NULL DEFAULT '',
    first_seen timestamptz      NOT NULL,
    last_seen  timestamptz      NOT NULL,
    last_value double precision NOT NULL,
    PRIMARY KEY (sensor_id, metric)
);

-- The primary key is both the index for time-range queries of one sensor
-- metric and what makes a redelivered reading a no-op (ON CONFLICT DO
-- NOTHING), so MQTT at-least-once delivery does not duplicate rows.
CREATE TABLE readings (
    sensor_id text COLLATE "C" NOT NULL,
    metric    text COLLATE "C" NOT NULL,
    ts        timestamptz      NOT NULL,
    value     double precision NOT NULL,
    PRIMARY KEY (sensor_id, metric, ts)
);

CREATE TABLE users (
    name          text        PRIMARY KEY,
    role          text        NOT NULL CHECK (role IN ('viewer', 'analyst', 'operator', 'admin')),
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Commands sent to devices and their outcome: the audit trail.
CREATE TABLE commands (
    id           text             PRIMARY KEY,
    sensor_id    text             NOT NULL,
    action       text             NOT NULL,
    params       jsonb            NOT NULL DEFAULT '{}',
    issued_by    text             NOT NULL,
    issued_at    timestamptz      NOT NULL DEFAULT now(),
    status       text             NOT NULL DEFAULT 'pending'
                                  CHECK (status IN ('pending', 'success', 'error', 'timeout')),
    message      text             NOT NULL DEFAULT '',
    responded_at timestamptz,
    latency_ms   double precision
);

CREATE INDEX commands_sensor_issued_at_idx ON commands (sensor_id, issued_at DESC);
-- For the audit list over all sensors (newest first).
CREATE INDEX commands_issued_at_idx ON commands (issued_at DESC);
-- Restarted instances resume the timeouts of commands still pending.
CREATE INDEX commands_pending_idx ON commands (issued_at) WHERE status = 'pending';

-- Small key/value settings shared by all instances (e.g. generated secrets).
CREATE TABLE settings (
    key        text        PRIMARY KEY,
    value      text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Outbox of messages a user must acknowledge. A row is deleted when its
-- recipient acks it; until then it is delivered again on every new
-- connection of that user, oldest (lowest id) first.
CREATE TABLE deliveries (
    id         bigserial   PRIMARY KEY,
    recipient  text        NOT NULL,
    type       text        NOT NULL,
    ref        jsonb,
    data       jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX deliveries_recipient_id_idx ON deliveries (recipient, id);

-- +goose Down
DROP TABLE deliveries;
DROP TABLE settings;
DROP TABLE commands;
DROP TABLE users;
DROP TABLE readings;
DROP TABLE sensors;
