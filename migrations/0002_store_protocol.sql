-- The store protocol for many writers (README "Store protocol").
--
-- Rows belong to (owner, block_height): the owner is the tracked contract that received the
-- receipt (receipts.receiver_id, events.contract_id, intent_updates.receiver_id,
-- solver_executions.receiver_id, dead_letters.contract_id), or '' for what every stream shares
-- (blocks, block-level dead letters). A row's content no longer depends on which contracts the
-- stream that wrote it tracked: blocks lose tracked_receipts, update_index and dead-letter seq
-- are numbered per receipt / per owner.

ALTER TABLE ${database}.blocks DROP COLUMN IF EXISTS tracked_receipts;

ALTER TABLE ${database}.solver_executions ADD COLUMN IF NOT EXISTS receiver_id LowCardinality(String) AFTER contract_id;

-- update_index becomes (receipt index in block << 16) + update within the receipt, so two streams
-- tracking different contracts number one receipt's updates alike.
CREATE TABLE ${database}.intent_updates_v2
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
    INDEX idx_signer signer_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_solver solver_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_tx_hash tx_hash TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(block_timestamp)
ORDER BY (contract_id, intent_id, block_height, update_index)
SETTINGS merge_max_block_size = 1024, vertical_merge_algorithm_min_rows_to_activate = 1,
         vertical_merge_algorithm_min_columns_to_activate = 1, max_compress_block_size = 131072;

INSERT INTO ${database}.intent_updates_v2
SELECT block_height, block_timestamp, update_index, contract_id, contract_id, intent_id, status, failure,
       signer_id, solver_id, kinds, tokens, amounts, referral, action, deadline, receipt_id, tx_hash,
       method_name, gas_burnt
FROM ${database}.intent_updates;

-- Dead letters are numbered per (block, owner): two streams with different contracts never
-- collide on the key.
CREATE TABLE ${database}.dead_letters_v2
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
ORDER BY (block_height, contract_id, seq)
SETTINGS merge_max_block_size = 1024, vertical_merge_algorithm_min_rows_to_activate = 1,
         vertical_merge_algorithm_min_columns_to_activate = 1, max_compress_block_size = 131072;

INSERT INTO ${database}.dead_letters_v2 SELECT * FROM ${database}.dead_letters;

DROP VIEW IF EXISTS ${database}.intents;

RENAME TABLE ${database}.intent_updates TO ${database}.intent_updates_v1, ${database}.intent_updates_v2 TO ${database}.intent_updates;

RENAME TABLE ${database}.dead_letters TO ${database}.dead_letters_v1, ${database}.dead_letters_v2 TO ${database}.dead_letters;

DROP TABLE ${database}.intent_updates_v1;

DROP TABLE ${database}.dead_letters_v1;

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

-- Deleting a batch reads only the granules that hold its heights: none of these tables is
-- ordered by height, so a minmax skip index on block_height prunes the rest
-- (benchmarks/store_delete.py).
ALTER TABLE ${database}.receipts ADD INDEX IF NOT EXISTS idx_height block_height TYPE minmax GRANULARITY 1;
ALTER TABLE ${database}.events ADD INDEX IF NOT EXISTS idx_height block_height TYPE minmax GRANULARITY 1;
ALTER TABLE ${database}.intent_updates ADD INDEX IF NOT EXISTS idx_height block_height TYPE minmax GRANULARITY 1;
ALTER TABLE ${database}.solver_executions ADD INDEX IF NOT EXISTS idx_height block_height TYPE minmax GRANULARITY 1;
ALTER TABLE ${database}.receipts MATERIALIZE INDEX idx_height;
ALTER TABLE ${database}.events MATERIALIZE INDEX idx_height;
ALTER TABLE ${database}.intent_updates MATERIALIZE INDEX idx_height;
ALTER TABLE ${database}.solver_executions MATERIALIZE INDEX idx_height;

-- One row per stream, replaced on every change (newest version wins; read with FINAL, so a
-- read costs O(streams), not O(history)). `version` comes from the writer that holds the
-- stream's lease: it only grows, whatever any clock does.
CREATE TABLE IF NOT EXISTS ${database}.streams
(
    stream        String,
    version       UInt64,
    owners        Array(String),
    start_height  UInt64,
    end_height    Nullable(UInt64),
    height        UInt64,
    block_hash    String,
    -- the heights [pending_low, pending_high] of a batch being written: what a crash may leave
    pending_low   Nullable(UInt64),
    pending_high  Nullable(UInt64),
    -- when the store received that marker: of two streams about to write the same rows, the
    -- earlier marker writes them and the later one leaves them (README "Store protocol")
    pending_at    Nullable(DateTime64(6, 'UTC')) DEFAULT now64(6),
    -- (owner, first height, last height) ranges whose rows this stream wrote and committed
    written       Array(Tuple(String, UInt64, UInt64)),
    commit_seq    UInt64,
    fingerprints  Map(String, String),
    reindex       UInt8,
    holder        String,
    claimed_at    DateTime64(6, 'UTC'),
    lease_until   DateTime64(3, 'UTC'),
    updated_at    DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY stream;

-- The change feed: one row per committed batch, in each stream's commit order.
CREATE TABLE IF NOT EXISTS ${database}.commits
(
    stream          String,
    seq             UInt64,
    token           String,
    owners          Array(String),
    low_height      UInt64,
    high_height     UInt64,
    min_block_time  DateTime64(3, 'UTC'),
    max_block_time  DateTime64(3, 'UTC'),
    rows            Map(String, UInt64),
    reindex         UInt8,
    committed_at    DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = MergeTree
ORDER BY (stream, seq, token);

-- Progress recorded before this migration becomes streams that cover every owner ('*') up to
-- their checkpoint, so nothing already indexed is written again.
INSERT INTO ${database}.streams (stream, version, owners, start_height, end_height, height, block_hash,
                                 written, commit_seq, holder, claimed_at, lease_until)
SELECT stream, 1, ['*'], start_height, end_height, height, block_hash,
       if(height >= start_height, [('*', start_height, height)], []), 0, '', updated_at, toDateTime64(0, 3, 'UTC')
FROM ${database}.checkpoints;

DROP VIEW IF EXISTS ${database}.checkpoints;

DROP TABLE IF EXISTS ${database}.checkpoint_log;
