-- +goose Up

-- The rollup tables become partitioned by their bucket (docs/storage.md),
-- so that their retention drops whole partitions, as raw retention does,
-- instead of deleting rows: readings_1m by UTC month (readings_1m_pYYYYMM,
-- ~12 for a year of retention), readings_1h by UTC year (readings_1h_pYYYY,
-- ~10 for ten years). The server creates them ahead of time
-- (store.EnsureRollupPartitions).
--
-- As migration 00007 did for readings, the existing tables are not
-- copied: each is renamed TABLE_legacy and attached as the partition of
-- every bucket before the start of the next month (1m) or year (1h), UTC,
-- after buckets at or after that bound (readings stamped in the future)
-- are moved to the new default partition. The CHECK lets ATTACH skip its
-- own scan: the cost is one sequential read of each table, no rewrite. The
-- legacy partition is dropped whole once its newest bucket is past the
-- rollup retention. Empty tables (a new database) are dropped instead.

ALTER TABLE readings_1m RENAME TO readings_1m_legacy;
ALTER TABLE readings_1m_legacy RENAME CONSTRAINT readings_1m_pkey TO readings_1m_legacy_pkey;
ALTER TABLE readings_1h RENAME TO readings_1h_legacy;
ALTER TABLE readings_1h_legacy RENAME CONSTRAINT readings_1h_pkey TO readings_1h_legacy_pkey;

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
) PARTITION BY RANGE (bucket);

CREATE TABLE readings_1h (LIKE readings_1m) PARTITION BY RANGE (bucket);
ALTER TABLE readings_1h ADD PRIMARY KEY (sensor_id, metric, bucket);

-- Buckets outside every partition (far past or future) land here; the
-- maintenance moves them into a partition when it creates one, and
-- retention deletes the ones past it row by row; both look them up by
-- bucket, hence the indexes.
CREATE TABLE readings_1m_default PARTITION OF readings_1m DEFAULT;
CREATE INDEX readings_1m_default_bucket_idx ON readings_1m_default (bucket);
CREATE TABLE readings_1h_default PARTITION OF readings_1h DEFAULT;
CREATE INDEX readings_1h_default_bucket_idx ON readings_1h_default (bucket);

-- +goose StatementBegin
DO $$
DECLARE
    t        record;
    has_rows boolean;
BEGIN
    -- Bounds computed on UTC timestamps: adding a month to a timestamptz
    -- would follow the session's time zone.
    FOR t IN SELECT * FROM (VALUES
        ('readings_1m', (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'),
        ('readings_1h', (date_trunc('year', now() AT TIME ZONE 'UTC') + interval '1 year') AT TIME ZONE 'UTC')
    ) AS v(parent, bound) LOOP
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', t.parent || '_legacy') INTO has_rows;
        IF NOT has_rows THEN
            EXECUTE format('DROP TABLE %I', t.parent || '_legacy'); -- a new database: nothing to keep
            CONTINUE;
        END IF;
        EXECUTE format('INSERT INTO %I SELECT * FROM %I WHERE bucket >= %L', t.parent || '_default', t.parent || '_legacy', t.bound);
        EXECUTE format('DELETE FROM %I WHERE bucket >= %L', t.parent || '_legacy', t.bound);
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (bucket < %L)', t.parent || '_legacy', t.parent || '_legacy_bucket_check', t.bound);
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)', t.parent, t.parent || '_legacy', t.bound);
    END LOOP;
END $$;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE readings_1m RENAME TO readings_1m_partitioned;
ALTER TABLE readings_1h RENAME TO readings_1h_partitioned;
CREATE TABLE readings_1m (LIKE readings_1m_partitioned INCLUDING DEFAULTS);
CREATE TABLE readings_1h (LIKE readings_1h_partitioned INCLUDING DEFAULTS);
INSERT INTO readings_1m SELECT * FROM readings_1m_partitioned;
INSERT INTO readings_1h SELECT * FROM readings_1h_partitioned;
DROP TABLE readings_1m_partitioned;
DROP TABLE readings_1h_partitioned;
ALTER TABLE readings_1m ADD PRIMARY KEY (sensor_id, metric, bucket);
ALTER TABLE readings_1h ADD PRIMARY KEY (sensor_id, metric, bucket);
