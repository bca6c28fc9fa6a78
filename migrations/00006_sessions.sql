-- +goose Up

-- Sessions that can be revoked (SECURITY.md, "Sessions"). A token carries
-- its user's token_version and its own id (jti); it is valid while the user
-- exists, is not disabled, still has that version, and the token was not
-- revoked by a logout. Changing a user's role or password, disabling or
-- deleting them bumps the version (or removes the row), which revokes every
-- token they hold.
ALTER TABLE users ADD COLUMN token_version bigint NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN disabled boolean NOT NULL DEFAULT false;

-- Tokens revoked one by one (logout), kept until they would have expired.
CREATE TABLE revoked_tokens (
    jti        text        PRIMARY KEY,
    user_name  text        NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_expires_idx ON revoked_tokens (expires_at);

-- Every revocation, in commit order, for every instance to follow: each
-- polls the events above the last id it saw and closes the sockets whose
-- token is no longer valid. jti is null when all of the user's tokens
-- were revoked. Ids are taken under an advisory lock held until commit
-- (as in migration 00004), so a poller never skips one that commits late.
CREATE TABLE session_events (
    id        bigserial   PRIMARY KEY,
    user_name text        NOT NULL,
    jti       text,
    at        timestamptz NOT NULL DEFAULT now()
);

-- +goose StatementBegin
CREATE FUNCTION session_events_next_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('watchroom.session_events'));
    NEW.id := nextval(pg_get_serial_sequence('session_events', 'id'));
    RETURN NEW;
END $$;
-- +goose StatementEnd

CREATE TRIGGER session_events_id BEFORE INSERT ON session_events
    FOR EACH ROW EXECUTE FUNCTION session_events_next_id();

-- +goose Down
DROP TRIGGER session_events_id ON session_events;
DROP FUNCTION session_events_next_id();
DROP TABLE session_events;
DROP TABLE revoked_tokens;
ALTER TABLE users DROP COLUMN disabled;
ALTER TABLE users DROP COLUMN token_version;
