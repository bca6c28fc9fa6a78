-- +goose Up

-- Silences: an operator mutes a sensor (every metric and rule) or one rule
-- of it (sensor, metric and rule kind) until a time, with a reason.
-- Detection goes on while a sensor is silenced: alerts are still opened,
-- stored and posted, but carry the silence's id, and dashboards do not
-- announce them (docs/alerts.md, "Silences"). Rows are never deleted: an
-- ended or expired silence is the record of who muted what, when and why.
CREATE TABLE silences (
    id         bigserial        PRIMARY KEY,
    sensor_id  text COLLATE "C" NOT NULL,
    -- Both NULL: the whole sensor. Both set: one rule.
    metric     text COLLATE "C",
    kind       text             CHECK (kind IN ('threshold', 'spike', 'stale')),
    reason     text             NOT NULL DEFAULT '',
    created_by text             NOT NULL,
    created_at timestamptz      NOT NULL,
    until      timestamptz      NOT NULL,
    -- Set when someone ends the silence before until.
    ended_by   text,
    ended_at   timestamptz,
    CHECK ((metric IS NULL) = (kind IS NULL)),
    CHECK (until > created_at),
    CHECK ((ended_by IS NULL) = (ended_at IS NULL))
);

-- Detection loads the silences in force at start; GET /api/silences lists
-- one sensor's newest first.
CREATE INDEX silences_in_force_idx ON silences (until) WHERE ended_at IS NULL;
CREATE INDEX silences_sensor_id_idx ON silences (sensor_id, id DESC);

-- The silence in force when an alert opened, if any: the alert is stored
-- and shown, not announced. Only set when the alert opens.
ALTER TABLE alerts ADD COLUMN silence_id bigint REFERENCES silences (id);

-- +goose Down
ALTER TABLE alerts DROP COLUMN silence_id;
DROP TABLE silences;
