-- +goose Up
-- Course notes (COURSE_DIR): one row per file, with the hash of its content
-- (a changed hash means re-index), and its sections, searched with
-- PostgreSQL's own full-text search through a GIN index.
CREATE TABLE course_files (
    path       text        PRIMARY KEY CHECK (path <> '' AND length(path) <= 1024),
    hash       text        NOT NULL CHECK (hash <> '' AND length(hash) <= 128),
    indexed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE course_sections (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    path    text    NOT NULL REFERENCES course_files (path) ON DELETE CASCADE,
    seq     integer NOT NULL,
    heading text    NOT NULL,
    title   text    NOT NULL, -- the heading path's words: weighted above the text
    file    text    NOT NULL, -- the file name's words: shared by all its sections, weighted below the text
    body    text    NOT NULL,
    tsv     tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('english', title), 'A') ||
                setweight(to_tsvector('english', body), 'B') ||
                setweight(to_tsvector('english', file), 'C')) STORED,
    UNIQUE (path, seq)
);

-- fastupdate off: sections go straight into the index when the notes are
-- (re-)indexed, which is rare, instead of into GIN's pending list, which
-- every search would scan linearly until a vacuum merged it (and which
-- makes the planner prefer a sequential scan).
CREATE INDEX course_sections_tsv ON course_sections USING GIN (tsv) WITH (fastupdate = off);

-- What /ask remembers per (platform, workspace, channel, user): the last
-- turns, read newest first by the key index, purged by created_at.
CREATE TABLE ask_memory (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    platform   text        NOT NULL CHECK (platform <> '' AND length(platform) <= 32),
    workspace  text        NOT NULL CHECK (length(workspace) <= 128),
    channel    text        NOT NULL CHECK (length(channel) <= 128),
    user_id    text        NOT NULL CHECK (user_id <> '' AND length(user_id) <= 128),
    question   text        NOT NULL,
    answer     text        NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE INDEX ask_memory_key ON ask_memory (platform, workspace, channel, user_id, created_at DESC, id DESC);
CREATE INDEX ask_memory_created_at ON ask_memory (created_at);

-- +goose Down
DROP TABLE ask_memory;
DROP TABLE course_sections;
DROP TABLE course_files;
