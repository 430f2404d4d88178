-- Rollups (README "Rollups"): per contract and 1-minute, 1-hour and 1-day bucket of block time,
-- recomputed from the base tables for exactly the buckets that the `commits` change feed says
-- changed (indexer/rollup). A job deletes the buckets it recomputes and inserts them again, so a
-- replay, a late backfill or a crash mid-job leaves each bucket equal to its base rows.
-- Buckets lead the sort key: a job deletes and reads whole buckets, the exporter reads time windows.
-- Quantile and distinct-count columns hold exact aggregate states: 1h and 1d buckets merge the
-- 1m states, and any window merges them again, with the same result as reading the base rows.

-- Where each job is in the change feed: per job and stream, the last commit seq it has applied.
-- Read with FINAL; `version` only grows (the store's clock in microseconds when written).
CREATE TABLE IF NOT EXISTS ${database}.rollup_cursors
(
    job        LowCardinality(String),
    stream     String,
    seq        UInt64,
    version    UInt64,
    updated_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (job, stream);

CREATE TABLE IF NOT EXISTS ${database}.solver_stats_1m
(
    bucket            DateTime('UTC'),
    contract_id       LowCardinality(String),
    -- '*': every solver execution of the contract (the network-wide row)
    solver_id         LowCardinality(String),
    executions        UInt64,
    successes         UInt64,
    failures          UInt64,
    failure_reasons   Map(String, UInt64),
    gas_burnt         UInt128,
    -- executions per fixed gas bucket: upper bound in Tgas ('1' .. '1000', '+Inf'), indexer/gas.py
    gas_buckets       Map(String, UInt64),
    gas_quantiles     AggregateFunction(quantilesExact(0.5, 0.9, 0.99), UInt64),
    latency_count     UInt64,
    latency_sum       Float64,
    latency_quantiles AggregateFunction(quantilesExact(0.5, 0.9, 0.99), Nullable(Float64)),
    computed_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id, solver_id);

CREATE TABLE IF NOT EXISTS ${database}.solver_stats_1h
(
    bucket            DateTime('UTC'),
    contract_id       LowCardinality(String),
    -- '*': every solver execution of the contract (the network-wide row)
    solver_id         LowCardinality(String),
    executions        UInt64,
    successes         UInt64,
    failures          UInt64,
    failure_reasons   Map(String, UInt64),
    gas_burnt         UInt128,
    -- executions per fixed gas bucket: upper bound in Tgas ('1' .. '1000', '+Inf'), indexer/gas.py
    gas_buckets       Map(String, UInt64),
    gas_quantiles     AggregateFunction(quantilesExact(0.5, 0.9, 0.99), UInt64),
    latency_count     UInt64,
    latency_sum       Float64,
    latency_quantiles AggregateFunction(quantilesExact(0.5, 0.9, 0.99), Nullable(Float64)),
    computed_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id, solver_id);

CREATE TABLE IF NOT EXISTS ${database}.solver_stats_1d
(
    bucket            DateTime('UTC'),
    contract_id       LowCardinality(String),
    -- '*': every solver execution of the contract (the network-wide row)
    solver_id         LowCardinality(String),
    executions        UInt64,
    successes         UInt64,
    failures          UInt64,
    failure_reasons   Map(String, UInt64),
    gas_burnt         UInt128,
    -- executions per fixed gas bucket: upper bound in Tgas ('1' .. '1000', '+Inf'), indexer/gas.py
    gas_buckets       Map(String, UInt64),
    gas_quantiles     AggregateFunction(quantilesExact(0.5, 0.9, 0.99), UInt64),
    latency_count     UInt64,
    latency_sum       Float64,
    latency_quantiles AggregateFunction(quantilesExact(0.5, 0.9, 0.99), Nullable(Float64)),
    computed_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id, solver_id);

CREATE TABLE IF NOT EXISTS ${database}.intent_stats_1m
(
    bucket      DateTime('UTC'),
    contract_id LowCardinality(String),
    kind        LowCardinality(String),
    status      LowCardinality(String),
    intents     UInt64,
    updates     UInt64,
    intent_ids  AggregateFunction(uniqExact, String),
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id, kind, status);

CREATE TABLE IF NOT EXISTS ${database}.intent_stats_1h
(
    bucket      DateTime('UTC'),
    contract_id LowCardinality(String),
    kind        LowCardinality(String),
    status      LowCardinality(String),
    intents     UInt64,
    updates     UInt64,
    intent_ids  AggregateFunction(uniqExact, String),
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id, kind, status);

CREATE TABLE IF NOT EXISTS ${database}.intent_stats_1d
(
    bucket      DateTime('UTC'),
    contract_id LowCardinality(String),
    kind        LowCardinality(String),
    status      LowCardinality(String),
    intents     UInt64,
    updates     UInt64,
    intent_ids  AggregateFunction(uniqExact, String),
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id, kind, status);

CREATE TABLE IF NOT EXISTS ${database}.receipt_stats_1m
(
    bucket               DateTime('UTC'),
    contract_id          LowCardinality(String),
    receipts             UInt64,
    successes            UInt64,
    failures             UInt64,
    gas_burnt            UInt128,
    blocks_with_receipts UInt64,
    computed_at          DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id);

CREATE TABLE IF NOT EXISTS ${database}.receipt_stats_1h
(
    bucket               DateTime('UTC'),
    contract_id          LowCardinality(String),
    receipts             UInt64,
    successes            UInt64,
    failures             UInt64,
    gas_burnt            UInt128,
    blocks_with_receipts UInt64,
    computed_at          DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id);

CREATE TABLE IF NOT EXISTS ${database}.receipt_stats_1d
(
    bucket               DateTime('UTC'),
    contract_id          LowCardinality(String),
    receipts             UInt64,
    successes            UInt64,
    failures             UInt64,
    gas_burnt            UInt128,
    blocks_with_receipts UInt64,
    computed_at          DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id);

CREATE TABLE IF NOT EXISTS ${database}.block_stats_1m
(
    bucket      DateTime('UTC'),
    blocks      UInt64,
    min_height  UInt64,
    max_height  UInt64,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY bucket;

CREATE TABLE IF NOT EXISTS ${database}.block_stats_1h
(
    bucket      DateTime('UTC'),
    blocks      UInt64,
    min_height  UInt64,
    max_height  UInt64,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY bucket;

CREATE TABLE IF NOT EXISTS ${database}.block_stats_1d
(
    bucket      DateTime('UTC'),
    blocks      UInt64,
    min_height  UInt64,
    max_height  UInt64,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY bucket;
