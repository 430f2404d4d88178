-- Intent lifecycle and lookups that scale (README "intents", "intent_lookups").
--
-- intent_updates learns when the transaction carrying an intent was seen (submitted_height,
-- submitted_at) and which accounts the intent moves tokens for (accounts). The `intents` view
-- keeps `executed` final (a later failed replay is an attempt, not a new status), counts
-- attempts and gives every time of the life of an intent; verified_at is NULL when there was no
-- verification.
--
-- intent_lookups holds one row per (update, lookup key): the update's signer and accounts
-- ('account'), its solver ('solver') and its transaction ('tx'); intent_status_counts one row per
-- (block, contract, status) with the number of updates. Rows carry block_height and receiver_id
-- like every data table, so the writer deletes and replaces them with the rest of a batch: a
-- lookup is exact whatever batches were replaced or removed (no materialized view, which would
-- keep deleted rows).

DROP VIEW IF EXISTS ${database}.intents;

-- intent_updates is rebuilt with small granules and compressed blocks: a lookup folds the updates
-- of up to a page of intents scattered over the table, and each costs one granule per column, not
-- 8192 rows of every column.
CREATE TABLE ${database}.intent_updates_v4
(
    block_height      UInt64,
    block_timestamp   DateTime64(3, 'UTC'),
    update_index      UInt64,
    contract_id       LowCardinality(String),
    receiver_id       LowCardinality(String),
    intent_id         String,
    status            LowCardinality(String),
    failure           String,
    signer_id         String,
    solver_id         String,
    kinds             Array(LowCardinality(String)),
    tokens            Array(String),
    amounts           Array(String),
    referral          String,
    action            LowCardinality(String),
    deadline          String,
    receipt_id        String,
    tx_hash           String,
    method_name       LowCardinality(String),
    gas_burnt         UInt64,
    submitted_height  Nullable(UInt64),
    submitted_at      Nullable(DateTime64(3, 'UTC')),
    accounts          Array(String),
    INDEX idx_signer signer_id TYPE bloom_filter GRANULARITY 16,
    INDEX idx_solver solver_id TYPE bloom_filter GRANULARITY 16,
    INDEX idx_tx_hash tx_hash TYPE bloom_filter GRANULARITY 16,
    INDEX idx_height block_height TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(block_timestamp)
ORDER BY (contract_id, intent_id, block_height, update_index)
SETTINGS index_granularity = 256, min_compress_block_size = 4096, max_compress_block_size = 65536,
         merge_max_block_size = 1024, vertical_merge_algorithm_min_rows_to_activate = 1,
         vertical_merge_algorithm_min_columns_to_activate = 1;

INSERT INTO ${database}.intent_updates_v4
SELECT block_height, block_timestamp, update_index, contract_id, receiver_id, intent_id, status, failure, signer_id,
       solver_id, kinds, tokens, amounts, referral, action, deadline, receipt_id, tx_hash, method_name, gas_burnt,
       NULL, NULL, []
FROM ${database}.intent_updates;

RENAME TABLE ${database}.intent_updates TO ${database}.intent_updates_v3, ${database}.intent_updates_v4 TO ${database}.intent_updates;

DROP TABLE ${database}.intent_updates_v3;

CREATE TABLE IF NOT EXISTS ${database}.intent_lookups
(
    kind            LowCardinality(String),
    key             String,
    block_height    UInt64,
    block_timestamp DateTime64(3, 'UTC'),
    update_index    UInt64,
    contract_id     LowCardinality(String),
    receiver_id     LowCardinality(String),
    intent_id       String,
    status          LowCardinality(String),
    INDEX idx_height block_height TYPE minmax GRANULARITY 1,
    INDEX idx_time block_timestamp TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(block_timestamp)
-- a key's rows in chain order: "newest 50" reads the end of one key's range in reverse
ORDER BY (kind, key, block_height, update_index, intent_id)
SETTINGS index_granularity = 1024, merge_max_block_size = 8192, max_compress_block_size = 131072;

-- Counts over time sum a few rows per block instead of reading every update of the range.
CREATE TABLE IF NOT EXISTS ${database}.intent_status_counts
(
    block_height    UInt64,
    block_timestamp DateTime64(3, 'UTC'),
    contract_id     LowCardinality(String),
    receiver_id     LowCardinality(String),
    status          LowCardinality(String),
    updates         UInt32,
    INDEX idx_time block_timestamp TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(block_timestamp)
ORDER BY (contract_id, block_height, status, receiver_id)
SETTINGS index_granularity = 1024;

CREATE VIEW IF NOT EXISTS ${database}.intents AS
SELECT
    contract_id,
    intent_id,
    -- executed is final: a failed replay of an executed payload does not undo it
    if(countIf(u_status = 'executed') > 0, 'executed', argMax(u_status, ver)) AS status,
    if(status = 'executed', '', argMax(u_failure, ver)) AS failure,
    argMaxIf(u_signer, ver, u_signer != '')         AS signer_id,
    argMaxIf(u_solver, ver, u_solver != '')         AS solver_id,
    argMaxIf(u_kinds, ver, notEmpty(u_kinds))       AS kinds,
    argMaxIf(u_tokens, ver, notEmpty(u_tokens))     AS tokens,
    argMaxIf(u_amounts, ver, notEmpty(u_amounts))   AS amounts,
    argMaxIf(u_referral, ver, u_referral != '')     AS referral,
    argMaxIf(u_action, ver, u_action != '')         AS action,
    argMaxIf(u_deadline, ver, u_deadline != '')     AS deadline,
    arraySort(groupUniqArrayArray(u_accounts))      AS accounts,
    if(status = 'executed', argMaxIf(u_receipt, ver, u_status = 'executed'), argMax(u_receipt, ver)) AS receipt_id,
    argMinIf(u_tx, ver, u_tx != '')                 AS tx_hash,
    arraySum(arrayMap(x -> x.2, arrayDistinct(groupArray((u_receipt, u_gas))))) AS gas_burnt,
    -- receipts that decided an outcome (executed, failed, completed, expired): retries and replays
    uniqExactIf(u_receipt, u_status IN ('executed', 'failed', 'completed', 'expired')) AS attempts,
    min(u_sub_h)                                    AS submitted_height,
    min(u_sub_at)                                   AS submitted_at,
    min(u_ts)                                       AS first_seen,
    max(u_ts)                                       AS last_seen,
    max(u_height)                                   AS block_height,
    minIfOrNull(u_ts, u_status = 'verified')        AS verified_at,
    minIfOrNull(u_ts, u_status = 'failed')          AS first_failed_at,
    minIfOrNull(u_ts, u_status IN ('executed', 'completed')) AS executed_at,
    if(status IN ('completed', 'executed'), executed_at, NULL) AS completed_at,
    -- when the current status was reached
    if(status = 'executed', executed_at, last_seen) AS status_at,
    -- workshop: verification -> completion; NEAR Intents: submission -> execution
    if(countIf(u_status = 'verified') > 0,
       if(status = 'completed', dateDiff('millisecond', verified_at, executed_at) / 1000.0, NULL),
       if(status = 'executed' AND submitted_at IS NOT NULL,
          dateDiff('millisecond', submitted_at, executed_at) / 1000.0, NULL)) AS latency_s
FROM
(
    SELECT
        contract_id, intent_id, (block_height, update_index) AS ver, status AS u_status, failure AS u_failure,
        signer_id AS u_signer, solver_id AS u_solver, kinds AS u_kinds, tokens AS u_tokens, amounts AS u_amounts,
        referral AS u_referral, action AS u_action, deadline AS u_deadline, receipt_id AS u_receipt,
        tx_hash AS u_tx, gas_burnt AS u_gas, block_timestamp AS u_ts, block_height AS u_height,
        submitted_height AS u_sub_h, submitted_at AS u_sub_at, accounts AS u_accounts
    FROM ${database}.intent_updates
)
GROUP BY contract_id, intent_id;
