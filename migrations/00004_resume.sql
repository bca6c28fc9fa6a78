-- +goose Up

-- Resume after a reconnect (docs/protocol.md, "Resuming after a reconnect")
-- replays alerts and direct messages above the highest id a client has
-- seen. That is only gap-free if ids become visible in increasing order:
-- a sequence alone does not promise it (a transaction that took id 9 can
-- commit after one that took 10, and a client that saw 10 would never ask
-- for 9). So the row that takes an id first takes a transaction-level
-- advisory lock, held until commit, which orders the writers of one
-- stream; both streams are written a few times a second at most.

-- event_id: increases with every change of any alert (insert or update).
CREATE SEQUENCE alert_event_seq;
ALTER TABLE alerts ADD COLUMN event_id bigint;

-- +goose StatementBegin
CREATE FUNCTION alerts_next_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('watchroom.alert_events'));
    NEW.event_id := nextval('alert_event_seq');
    RETURN NEW;
END $$;
-- +goose StatementEnd

UPDATE alerts SET event_id = nextval('alert_event_seq')
WHERE id IN (SELECT id FROM alerts ORDER BY id);
ALTER TABLE alerts ALTER COLUMN event_id SET NOT NULL;
CREATE UNIQUE INDEX alerts_event_id_idx ON alerts (event_id);
CREATE TRIGGER alerts_event BEFORE INSERT OR UPDATE ON alerts
    FOR EACH ROW EXECUTE FUNCTION alerts_next_event();

-- Direct messages: the id default is evaluated before the trigger runs, so
-- the trigger takes the lock and then a fresh id (the default's is skipped).
-- +goose StatementBegin
CREATE FUNCTION direct_messages_next_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('watchroom.direct_messages'));
    NEW.id := nextval(pg_get_serial_sequence('direct_messages', 'id'));
    RETURN NEW;
END $$;
-- +goose StatementEnd

CREATE TRIGGER direct_messages_id BEFORE INSERT ON direct_messages
    FOR EACH ROW EXECUTE FUNCTION direct_messages_next_id();

-- A user's direct messages above an id, whichever side they were on.
CREATE INDEX direct_messages_sender_idx ON direct_messages (sender, id);
CREATE INDEX direct_messages_recipient_idx ON direct_messages (recipient, id);

-- +goose Down
DROP INDEX direct_messages_recipient_idx;
DROP INDEX direct_messages_sender_idx;
DROP TRIGGER direct_messages_id ON direct_messages;
DROP FUNCTION direct_messages_next_id();
DROP TRIGGER alerts_event ON alerts;
DROP FUNCTION alerts_next_event();
DROP INDEX alerts_event_id_idx;
ALTER TABLE alerts DROP COLUMN event_id;
DROP SEQUENCE alert_event_seq;
