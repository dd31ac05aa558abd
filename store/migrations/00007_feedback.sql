-- +goose Up
-- Feedback on /ask answers: the students' "helpful" / "not helpful"
-- clicks, one row per answer (the question's interaction), the latest
-- click winning. It holds no user id or name: the question and the answer
-- are read from ask_memory through its via column while the turn is
-- remembered there (ASK_MEMORY_TTL; /forget deletes it).
CREATE TABLE feedback (
    platform    text        NOT NULL CHECK (platform <> '' AND length(platform) <= 32),
    interaction text        NOT NULL CHECK (interaction <> '' AND length(interaction) <= 256),
    helpful     boolean     NOT NULL,
    clicked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, interaction)
);

CREATE INDEX feedback_unhelpful ON feedback (clicked_at DESC) WHERE NOT helpful;

-- The ledger id of the /ask a remembered turn answered, so feedback can
-- find its question.
ALTER TABLE ask_memory ADD COLUMN via text;
CREATE INDEX ask_memory_via ON ask_memory (platform, via) WHERE via IS NOT NULL;

-- +goose Down
DROP INDEX ask_memory_via;
ALTER TABLE ask_memory DROP COLUMN via;
DROP TABLE feedback;
