-- +goose Up
-- /whoami counts and /forget anonymises a student's ledger rows: found by
-- (platform, workspace, user_id), not by a scan of the whole ledger.
CREATE INDEX interactions_user ON interactions (platform, workspace, user_id);

-- +goose Down
DROP INDEX interactions_user;
