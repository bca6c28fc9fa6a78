-- +goose Up

-- Detection rules per sensor metric and kind, edited by operators over
-- PUT /api/sensors/{id}/rules. A missing row means the defaults of
-- docs/alerts.md; a row with enabled = false switches that check off.
-- Which columns apply depends on kind (threshold: min, max, resolve_after;
-- spike: k, warmup, resolve_after; stale: after_seconds); model.
-- ValidateAlertRules checks that before anything is stored, the CHECKs
-- below only keep impossible values out.
CREATE TABLE alert_rules (
    sensor_id     text COLLATE "C" NOT NULL,
    metric        text COLLATE "C" NOT NULL,
    kind          text             NOT NULL CHECK (kind IN ('threshold', 'spike', 'stale')),
    enabled       boolean          NOT NULL DEFAULT true,
    min           double precision,
    max           double precision,
    k             double precision CHECK (k > 0),
    warmup        integer          CHECK (warmup > 0),
    after_seconds double precision CHECK (after_seconds > 0),
    resolve_after integer          CHECK (resolve_after > 0),
    updated_by    text             NOT NULL,
    updated_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (sensor_id, metric, kind),
    CHECK (min IS NULL OR max IS NULL OR min < max)
);

-- Alerts and their lifecycle: open -> acknowledged -> resolved (or open ->
-- resolved). Times are written by the server at millisecond precision, the
-- protocol's.
CREATE TABLE alerts (
    id             bigserial        PRIMARY KEY,
    sensor_id      text COLLATE "C" NOT NULL,
    metric         text COLLATE "C" NOT NULL,
    kind           text             NOT NULL CHECK (kind IN ('threshold', 'spike', 'offline')),
    severity       text             NOT NULL CHECK (severity IN ('warning', 'critical')),
    value          double precision NOT NULL,
    limit_or_score double precision NOT NULL,
    state          text             NOT NULL DEFAULT 'open'
                                    CHECK (state IN ('open', 'acknowledged', 'resolved')),
    opened_at      timestamptz      NOT NULL,
    updated_at     timestamptz      NOT NULL,
    count          bigint           NOT NULL DEFAULT 1 CHECK (count > 0),
    acked_by       text,
    acked_at       timestamptz,
    resolved_by    text,
    resolved_at    timestamptz,
    resolve_note   text             NOT NULL DEFAULT '',
    CHECK ((state = 'resolved') = (resolved_at IS NOT NULL))
);

-- At most one live (open or acknowledged) alert per sensor, metric and
-- kind: a new breach updates it (ON CONFLICT against this index) instead
-- of opening another, whatever the detector's memory says.
CREATE UNIQUE INDEX alerts_live_key ON alerts (sensor_id, metric, kind)
    WHERE state IN ('open', 'acknowledged');

-- GET /api/alerts lists newest first (by id) filtered by state or sensor.
CREATE INDEX alerts_state_id_idx ON alerts (state, id DESC);
CREATE INDEX alerts_sensor_id_idx ON alerts (sensor_id, id DESC);

-- +goose Down
DROP TABLE alerts;
DROP TABLE alert_rules;
