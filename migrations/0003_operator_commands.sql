-- Operator commands (README "Operator commands"): rewind and dead-letters retry.
--
-- `commits.kind` tells rollups what a change-feed row is: `batch` (rows written by an ingest
-- stream), `rewind` (rows of its owners above low_height - 1 removed) or `retry` (the rows of
-- retried dead letters' receipts replaced).
ALTER TABLE ${database}.commits ADD COLUMN IF NOT EXISTS kind LowCardinality(String) DEFAULT 'batch' AFTER reindex;

-- What a dead letter needs to be decoded again without its source: the receipt it came from
-- (the Lake outcome with its block, shard, position and transaction, as JSON; '' for block-level
-- dead letters), the log line's position for `log` dead letters (-1 otherwise), the decoder
-- version that wrote it, and for one written by `dead-letters retry` the retry's token.
ALTER TABLE ${database}.dead_letters ADD COLUMN IF NOT EXISTS log_index Int64 DEFAULT -1;
ALTER TABLE ${database}.dead_letters ADD COLUMN IF NOT EXISTS context String DEFAULT '';
ALTER TABLE ${database}.dead_letters ADD COLUMN IF NOT EXISTS decoder_version UInt32 DEFAULT 0;
ALTER TABLE ${database}.dead_letters ADD COLUMN IF NOT EXISTS retry_token String DEFAULT '';
