-- +goose Up
CREATE TABLE registrations (
    platform   text        NOT NULL CHECK (platform <> '' AND length(platform) <= 32),
    workspace  text        NOT NULL CHECK (length(workspace) <= 128),
    user_id    text        NOT NULL CHECK (user_id <> '' AND length(user_id) <= 128),
    channel    text        NOT NULL DEFAULT '' CHECK (length(channel) <= 128),
    name       text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    email      text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND email = lower(email)),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, workspace, user_id)
);

CREATE TABLE interactions (
    platform        text        NOT NULL CHECK (platform <> '' AND length(platform) <= 32),
    id              text        NOT NULL CHECK (id <> '' AND length(id) <= 256),
    command         text        NOT NULL CHECK (length(command) <= 64),
    mode            text        NOT NULL CHECK (length(mode) <= 16),
    workspace       text        NOT NULL DEFAULT '' CHECK (length(workspace) <= 128),
    channel         text        NOT NULL DEFAULT '' CHECK (length(channel) <= 128),
    user_id         text        NOT NULL DEFAULT '' CHECK (length(user_id) <= 128),
    received_at     timestamptz NOT NULL,
    acknowledged_at timestamptz,
    stored_at       timestamptz,
    agent_done_at   timestamptz,
    replied_at      timestamptz,
    outcome         text        NOT NULL DEFAULT '' CHECK (length(outcome) <= 32),
    PRIMARY KEY (platform, id)
);

CREATE INDEX interactions_received_at ON interactions (received_at);

-- +goose Down
DROP TABLE interactions;
DROP TABLE registrations;
