-- +goose Up

-- Readings become a table partitioned by time (docs/data.md): one partition
-- per UTC day, named readings_pYYYYMMDD, created ahead of time by the
-- server (store.EnsurePartitions); retention drops whole partitions, which
-- is instant and leaves no dead rows for vacuum, where a DELETE of a day of
-- readings would rewrite it.
--
-- The existing table is not copied: it is renamed and attached as the
-- partition readings_legacy for every time before the start of tomorrow
-- (UTC), so the upgrade of a large table costs one sequential read (the
-- CHECK below, which lets ATTACH skip its own scan) plus the rollup
-- backfill, not a rewrite; and no reading moves. Its rows stay until the
-- whole partition falls past the raw retention, i.e. until its newest day
-- does. Readings stored with a ts at or after that bound (clocks in the
-- future) are moved into the new table first; there are few of them. An
-- empty table (a new database) is dropped instead.
ALTER TABLE readings RENAME TO readings_legacy;
ALTER TABLE readings_legacy RENAME CONSTRAINT readings_pkey TO readings_legacy_pkey;

CREATE TABLE readings (
    sensor_id text COLLATE "C" NOT NULL,
    metric    text COLLATE "C" NOT NULL,
    ts        timestamptz      NOT NULL,
    value     double precision NOT NULL,
    PRIMARY KEY (sensor_id, metric, ts)
) PARTITION BY RANGE (ts);

-- Readings outside every partition (far in the past, before the oldest
-- kept day, or beyond the days created ahead) land here instead of being
-- refused. EnsurePartitions moves them into a day's partition when it
-- creates it, and retention deletes the ones past the raw retention row by
-- row; both look them up by ts, hence the index.
CREATE TABLE readings_default PARTITION OF readings DEFAULT;
CREATE INDEX readings_default_ts_idx ON readings_default (ts);

-- +goose StatementBegin
DO $$
DECLARE
    bound timestamptz := date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 day';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM readings_legacy) THEN
        DROP TABLE readings_legacy; -- a new database: nothing to keep
        RETURN;
    END IF;
    INSERT INTO readings_default SELECT * FROM readings_legacy WHERE ts >= bound;
    DELETE FROM readings_legacy WHERE ts >= bound;
    EXECUTE format('ALTER TABLE readings_legacy ADD CONSTRAINT readings_legacy_ts_check CHECK (ts < %L)', bound);
    EXECUTE format('ALTER TABLE readings ATTACH PARTITION readings_legacy FOR VALUES FROM (MINVALUE) TO (%L)', bound);
END $$;
-- +goose StatementEnd

-- Rollups: per sensor metric and bucket (1 minute, 1 hour; the bucket's
-- start, aligned on the Unix epoch like date_bin in ReadingBuckets), the
-- count, sum, min and max of the readings, and the first and last reading
-- by ts. InsertReadings folds exactly the rows it inserted into them, in
-- the same transaction, so they hold every stored reading (a duplicate is
-- never inserted, so never counted) and outlive raw retention. first_ts /
-- last_ts let a late reading replace first_value / last_value only when it
-- is earlier / later than what the bucket holds. The primary key is both
-- the upsert target and the index of history queries (one series, a range
-- of buckets).
CREATE TABLE readings_1m (
    sensor_id   text COLLATE "C" NOT NULL,
    metric      text COLLATE "C" NOT NULL,
    bucket      timestamptz      NOT NULL,
    count       bigint           NOT NULL,
    sum         double precision NOT NULL,
    min         double precision NOT NULL,
    max         double precision NOT NULL,
    first_ts    timestamptz      NOT NULL,
    first_value double precision NOT NULL,
    last_ts     timestamptz      NOT NULL,
    last_value  double precision NOT NULL,
    PRIMARY KEY (sensor_id, metric, bucket)
);

CREATE TABLE readings_1h (LIKE readings_1m INCLUDING ALL);

-- Backfill from every stored reading: one pass over readings for the
-- minutes, the hours from the minutes.
INSERT INTO readings_1m
SELECT sensor_id, metric, date_bin('1 minute', ts, 'epoch'::timestamptz),
       count(*), sum(value), min(value), max(value),
       min(ts), (array_agg(value ORDER BY ts))[1],
       max(ts), (array_agg(value ORDER BY ts DESC))[1]
FROM readings
GROUP BY 1, 2, 3;

INSERT INTO readings_1h
SELECT sensor_id, metric, date_bin('1 hour', bucket, 'epoch'::timestamptz),
       sum(count), sum(sum), min(min), max(max),
       min(first_ts), (array_agg(first_value ORDER BY first_ts))[1],
       max(last_ts), (array_agg(last_value ORDER BY last_ts DESC))[1]
FROM readings_1m
GROUP BY 1, 2, 3;

-- What retention removed, by every instance: /api/stats shows the totals
-- and the latest drops. kind is raw (a partition or default-partition
-- rows), 1m or 1h; reason is age or size (WATCHROOM_MAX_RAW_BYTES).
CREATE TABLE data_drops (
    id        bigserial   PRIMARY KEY,
    at        timestamptz NOT NULL,
    kind      text        NOT NULL CHECK (kind IN ('raw', '1m', '1h')),
    reason    text        NOT NULL CHECK (reason IN ('age', 'size')),
    target    text        NOT NULL,
    upto      timestamptz NOT NULL,
    row_count bigint      NOT NULL,
    bytes     bigint      NOT NULL
);

-- +goose Down
DROP TABLE data_drops;
DROP TABLE readings_1h;
DROP TABLE readings_1m;
ALTER TABLE readings RENAME TO readings_partitioned;
CREATE TABLE readings (
    sensor_id text COLLATE "C" NOT NULL,
    metric    text COLLATE "C" NOT NULL,
    ts        timestamptz      NOT NULL,
    value     double precision NOT NULL
);
INSERT INTO readings SELECT sensor_id, metric, ts, value FROM readings_partitioned;
DROP TABLE readings_partitioned;
ALTER TABLE readings ADD PRIMARY KEY (sensor_id, metric, ts);
