-- +goose Up
-- Queue mode gives each job a River priority from how many commands of its
-- class (platform, workspace, channel) are still pending ahead of it: the
-- commands not yet ended (job_input is cleared when a command ends), found
-- by class and arrival without a scan of the ledger.
CREATE INDEX interactions_pending_by_class ON interactions (platform, workspace, channel, received_at, id)
    WHERE job_input IS NOT NULL;

-- +goose Down
DROP INDEX interactions_pending_by_class;
