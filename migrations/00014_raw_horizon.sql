-- +goose Up

-- The raw horizon (docs/storage.md, "Late and repeated readings"): every
-- raw reading retention has removed is older than upto. A reading at or
-- after it is deduplicated by its key, as its stored row, if any, is still
-- there; one before it may be a repeat of a reading whose row is gone and
-- that the rollups already count, so InsertReadings stores it only where
-- the rollups can tell (store/readings.go, unstageSealedReadings).
-- store.DropRaw moves it forward in the transaction that drops. One row.
CREATE TABLE raw_horizon (
    only_row boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    upto     timestamptz NOT NULL
);
-- What retention removed before this migration is in data_drops.
INSERT INTO raw_horizon (upto)
SELECT coalesce(max(upto), timestamptz '0001-01-01 00:00:00+00') FROM data_drops WHERE kind = 'raw';

-- +goose Down
DROP TABLE raw_horizon;
