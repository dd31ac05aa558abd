-- +goose Up
-- Queue mode keeps what a job needs in the command's ledger row, not in
-- River's job: job_input (the command and where its answer goes, which may
-- hold a name, an email, a question and the platform's reply token) and
-- outbox (the answer, recorded before it is posted, so a retry posts it
-- again instead of asking the model again) and posted (the message ids of
-- posts a retry must not make again: the platforms' fallbacks). All are
-- cleared when the command ends.
ALTER TABLE interactions
    ADD COLUMN job_input jsonb,
    ADD COLUMN outbox    jsonb,
    ADD COLUMN posted    jsonb;

-- +goose Down
ALTER TABLE interactions
    DROP COLUMN posted,
    DROP COLUMN outbox,
    DROP COLUMN job_input;
