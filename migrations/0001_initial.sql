-- Core tables. `${database}` is replaced by the configured database name.
-- Every data table carries block_height: the writer deletes rows above the last checkpoint
-- before it resumes, so plain SELECTs (no FINAL) never see a row twice.
-- Table SETTINGS: rows carry large JSON strings (args, data, payload). Vertical merges (one
-- column at a time), small merge blocks and 128 KiB compressed blocks keep background merges
-- from spiking the memory of an embedded (chDB) store; measured in benchmarks/backfill.py.

CREATE DATABASE IF NOT EXISTS ${database};

CREATE TABLE IF NOT EXISTS ${database}.blocks
(
    block_height       UInt64,
    block_hash         String,
    prev_hash          String,
    block_timestamp_ns UInt64,
    block_timestamp    DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Nano(toInt64(block_timestamp_ns), 'UTC'),
    author             String,
    protocol_version   UInt32,
    shard_ids          Array(UInt64),
    tracked_receipts   UInt32
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(block_timestamp)
ORDER BY block_height
SETTINGS merge_max_block_size = 1024, vertical_merge_algorithm_min_rows_to_activate = 1,
         vertical_merge_algorithm_min_columns_to_activate = 1, max_compress_block_size = 131072;

CREATE TABLE IF NOT EXISTS ${database}.receipts
(
    block_height    UInt64,
    block_timestamp DateTime64(3, 'UTC'),
    block_hash      String,
    shard_id        UInt64,
    index_in_block  UInt32,
    receipt_id      String,
    receiver_id     LowCardinality(String),
    predecessor_id  String,
    signer_id       String,
    tx_hash         String,
    method_name     LowCardinality(String),
    action_kinds    Array(LowCardinality(String)),
    args            String,
    deposit         UInt128,
    gas_attached    UInt64,
    gas_burnt       UInt64,
    tokens_burnt    UInt128,
    status          LowCardinality(String),
    failure         String,
    logs_count      UInt32,
    INDEX idx_receipt_id receipt_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_tx_hash tx_hash TYPE bloom_filter GRANULARITY 4,
    INDEX idx_signer signer_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_predecessor predecessor_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(block_timestamp)
ORDER BY (receiver_id, block_timestamp, receipt_id)
SETTINGS merge_max_block_size = 1024, vertical_merge_algorithm_min_rows_to_activate = 1,
         vertical_merge_algorithm_min_columns_to_activate = 1, max_compress_block_size = 131072;

CREATE TABLE IF NOT EXISTS ${database}.events
(
    block_height     UInt64,
    block_timestamp  DateTime64(3, 'UTC'),
    shard_id         UInt64,
    receipt_id       String,
    tx_hash          String,
    contract_id      LowCardinality(String),
    predecessor_id   String,
    standard         LowCardinality(String),
    version          LowCardinality(String),
    event            LowCardinality(String),
    log_index        UInt32,
    data             String,
    execution_status LowCardinality(String),
    INDEX idx_receipt_id receipt_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_tx_hash tx_hash TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(block_timestamp)
ORDER BY (contract_id, event, block_timestamp, receipt_id, log_index)
SETTINGS merge_max_block_size = 1024, vertical_merge_algorithm_min_rows_to_activate = 1,
         vertical_merge_algorithm_min_columns_to_activate = 1, max_compress_block_size = 131072;

-- Every state an intent passed through; `intents` below folds them into the latest state.
CREATE TABLE IF NOT EXISTS ${database}.intent_updates
(
    block_height      UInt64,
    block_timestamp   DateTime64(3, 'UTC'),
    update_index      UInt32,
    contract_id       LowCardinality(String),
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
    INDEX idx_signer signer_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_solver solver_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_tx_hash tx_hash TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(block_timestamp)
ORDER BY (contract_id, intent_id, block_height, update_index)
SETTINGS merge_max_block_size = 1024, vertical_merge_algorithm_min_rows_to_activate = 1,
         vertical_merge_algorithm_min_columns_to_activate = 1, max_compress_block_size = 131072;

-- Inner names differ from the outer aliases: ClickHouse lets an alias shadow a column.
CREATE VIEW IF NOT EXISTS ${database}.intents AS
SELECT
    contract_id,
    intent_id,
    argMax(u_status, ver)                           AS status,
    argMax(u_failure, ver)                          AS failure,
    argMaxIf(u_signer, ver, u_signer != '')         AS signer_id,
    argMaxIf(u_solver, ver, u_solver != '')         AS solver_id,
    argMaxIf(u_kinds, ver, notEmpty(u_kinds))       AS kinds,
    argMaxIf(u_tokens, ver, notEmpty(u_tokens))     AS tokens,
    argMaxIf(u_amounts, ver, notEmpty(u_amounts))   AS amounts,
    argMaxIf(u_referral, ver, u_referral != '')     AS referral,
    argMaxIf(u_action, ver, u_action != '')         AS action,
    argMaxIf(u_deadline, ver, u_deadline != '')     AS deadline,
    argMax(u_receipt, ver)                          AS receipt_id,
    argMinIf(u_tx, ver, u_tx != '')                 AS tx_hash,
    -- gas of every receipt that moved the intent, each receipt counted once
    arraySum(arrayMap(x -> x.2, arrayDistinct(groupArray((u_receipt, u_gas))))) AS gas_burnt,
    min(u_ts)                                       AS first_seen,
    max(u_ts)                                       AS last_seen,
    max(u_height)                                   AS block_height,
    minIf(u_ts, u_status = 'verified')              AS verified_at,
    if(status IN ('completed', 'executed'), last_seen, NULL) AS completed_at,
    if(countIf(u_status = 'verified') > 0 AND status IN ('completed', 'executed'),
       dateDiff('millisecond', verified_at, last_seen) / 1000.0, NULL) AS latency_s
FROM
(
    SELECT
        contract_id, intent_id, (block_height, update_index) AS ver, status AS u_status, failure AS u_failure,
        signer_id AS u_signer, solver_id AS u_solver, kinds AS u_kinds, tokens AS u_tokens, amounts AS u_amounts,
        referral AS u_referral, action AS u_action, deadline AS u_deadline, receipt_id AS u_receipt,
        tx_hash AS u_tx, gas_burnt AS u_gas, block_timestamp AS u_ts, block_height AS u_height
    FROM ${database}.intent_updates
)
GROUP BY contract_id, intent_id;

CREATE TABLE IF NOT EXISTS ${database}.solver_executions
(
    block_height    UInt64,
    block_timestamp DateTime64(3, 'UTC'),
    contract_id     LowCardinality(String),
    solver_id       LowCardinality(String),
    receipt_id      String,
    tx_hash         String,
    method_name     LowCardinality(String),
    intent_ids      Array(String),
    success         UInt8,
    failure         String,
    gas_burnt       UInt64,
    latency_s       Nullable(Float64),
    INDEX idx_receipt_id receipt_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(block_timestamp)
ORDER BY (contract_id, solver_id, block_timestamp, receipt_id)
SETTINGS merge_max_block_size = 1024, vertical_merge_algorithm_min_rows_to_activate = 1,
         vertical_merge_algorithm_min_columns_to_activate = 1, max_compress_block_size = 131072;

CREATE TABLE IF NOT EXISTS ${database}.dead_letters
(
    block_height UInt64,
    shard_id     Int64,
    receipt_id   String,
    contract_id  String,
    kind         LowCardinality(String),
    reason       String,
    payload      String,
    seq          UInt32
)
ENGINE = ReplacingMergeTree
ORDER BY (block_height, seq)
SETTINGS merge_max_block_size = 1024, vertical_merge_algorithm_min_rows_to_activate = 1,
         vertical_merge_algorithm_min_columns_to_activate = 1, max_compress_block_size = 131072;

-- Append-only history of progress; read the latest per stream through `checkpoints`.
CREATE TABLE IF NOT EXISTS ${database}.checkpoint_log
(
    stream       String,
    start_height UInt64,
    end_height   Nullable(UInt64),
    height       UInt64,
    block_hash   String,
    -- set while a batch up to this height is being written: what a crash may have left behind
    pending_height Nullable(UInt64),
    updated_at   DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = MergeTree
ORDER BY (stream, height, updated_at);

CREATE VIEW IF NOT EXISTS ${database}.checkpoints AS
SELECT
    stream,
    argMax(c_start, c_at) AS start_height,
    argMax(c_end, c_at)   AS end_height,
    argMax(c_height, c_at) AS height,
    argMax(c_hash, c_at)  AS block_hash,
    argMax(c_pending, c_at) AS pending_height,
    max(c_at)             AS updated_at
FROM
(
    SELECT stream, start_height AS c_start, end_height AS c_end, height AS c_height, block_hash AS c_hash,
           pending_height AS c_pending, updated_at AS c_at
    FROM ${database}.checkpoint_log
)
GROUP BY stream;
