-- +goose Up

-- The commit order of readings, for resume (docs/protocol.md, "Resuming
-- after a reconnect"). A reading's ts is the device's (or the receipt's)
-- time, not when it was committed: a reading with an older ts can commit
-- after one a client has already seen, and a resume by ts would miss it.
-- Each committed batch takes the next value of reading_seq and every row it
-- inserts carries it; InsertReadings takes it under a transaction-level
-- advisory lock held until commit, so seq order is commit order, across
-- instances too. A client resumes "after" the highest seq it saw.
--
-- The column's default reads the batch's seq from a transaction-local
-- setting, so every insert of the batch (the restamp path included) gets
-- it without naming it. Adding a column whose default is not volatile
-- rewrites nothing: rows stored before this migration have no seq and are
-- replayed by ts only.
CREATE SEQUENCE reading_seq;
ALTER TABLE readings ADD COLUMN seq bigint
    DEFAULT nullif(current_setting('watchroom.reading_seq', true), '')::bigint;

-- Replays read the newest batches: a BRIN index over the insertion order
-- finds them for a few pages of index, where a B-tree would cost every
-- insert a second index entry.
CREATE INDEX readings_seq_brin ON readings USING brin (seq);

-- +goose Down
DROP INDEX readings_seq_brin;
ALTER TABLE readings DROP COLUMN seq;
DROP SEQUENCE reading_seq;
