-- +goose Up

-- Devices allowed to talk to the MQTT broker under their own id: a device
-- "d1" publishes readings under sensors/d1/... and answers the commands of
-- devices/d1/commands on devices/d1/responses, and nothing else.
--
-- id is a sensor id (model.ValidID, repeated by the CHECK): the device id
-- is the MQTT username and the sensor id of its readings, so one name
-- means the same thing in the broker's ACL, the readings and the commands.
--
-- secret_hash is in Mosquitto's password-file format for PBKDF2-SHA512,
-- "$7$<iterations>$<salt base64>$<hash base64>", so the embedded broker
-- verifies it and `watchroom device export-mosquitto` writes it into a
-- Mosquitto password_file unchanged: one hash serves both brokers.
--
-- A revoked device keeps its row (revoked_at set) so the list still shows
-- who was registered and when it lost access; adding the id again replaces
-- the row with a new secret.
CREATE TABLE devices (
    id          text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._-]{1,64}$'),
    secret_hash text        NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- +goose Down
DROP TABLE devices;
