-- +goose Up

-- Chat rooms. name is the key clients use; the CHECK repeats
-- model.ValidRoomName so that no path can store a name the protocol
-- rejects. fixed rooms (general, alerts) cannot be deleted and every user
-- is a member of them without a room_members row: "every user is in general
-- and alerts" then holds for users created at any time, with nothing to
-- write when someone logs in.
--
-- last_message_id is the room's message counter. Taking the next id with
-- UPDATE ... RETURNING in the statement that inserts the message locks the
-- room row until that statement commits, so ids of one room are handed out
-- and committed in order: a reader who has seen id n never later finds a
-- smaller id appear (a global sequence would allow that, across
-- concurrent writers and across instances).
CREATE TABLE rooms (
    name            text COLLATE "C" PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_-]{1,64}$'),
    kind            text        NOT NULL CHECK (kind IN ('chat', 'alerts')),
    creator         text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    fixed           boolean     NOT NULL DEFAULT false,
    last_message_id bigint      NOT NULL DEFAULT 0
);

INSERT INTO rooms (name, kind, creator, fixed) VALUES
    ('general', 'chat', 'system', true),
    ('alerts', 'alerts', 'system', true);

-- Members of the rooms that are not fixed. user_name has no foreign key to
-- users: users are upserted by name and never deleted, and a membership
-- should not stop a future user clean-up.
CREATE TABLE room_members (
    room      text COLLATE "C" NOT NULL REFERENCES rooms (name) ON DELETE CASCADE,
    user_name text             NOT NULL,
    joined_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (room, user_name)
);

-- "Which rooms is this user in" (presence notifications).
CREATE INDEX room_members_user_idx ON room_members (user_name);

-- Chat messages; id counts per room (see rooms.last_message_id), and the
-- primary key is the index history pages walk backwards. alert_id links a
-- message to the alert it discusses; no foreign key, so that rooms and
-- alerts stay independent migrations and deleting old alerts keeps their
-- discussion.
CREATE TABLE chat_messages (
    room      text COLLATE "C" NOT NULL REFERENCES rooms (name) ON DELETE CASCADE,
    id        bigint           NOT NULL,
    user_name text             NOT NULL,
    content   text             NOT NULL,
    alert_id  bigint,
    ts        timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (room, id)
);

CREATE INDEX chat_messages_alert_idx ON chat_messages (alert_id, ts) WHERE alert_id IS NOT NULL;

-- Direct messages between two users. Delivery (and redelivery until acked)
-- goes through deliveries; this table is the record of what was said.
CREATE TABLE direct_messages (
    id        bigserial   PRIMARY KEY,
    sender    text        NOT NULL,
    recipient text        NOT NULL,
    content   text        NOT NULL,
    ts        timestamptz NOT NULL DEFAULT now()
);

-- One conversation, newest first, whichever side wrote.
CREATE INDEX direct_messages_pair_idx ON direct_messages
    (least(sender, recipient), greatest(sender, recipient), id);

-- +goose Down
DROP TABLE direct_messages;
DROP TABLE chat_messages;
DROP TABLE room_members;
DROP TABLE rooms;
