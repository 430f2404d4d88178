-- Solver economics and bridge health (README "Rollups", "Token flows and bridges";
-- indexer/rollup/economics.py). Same protocol as 0005: a job deletes and recomputes exactly the
-- buckets the `commits` feed says changed. Amounts are exact integers (Int256 sums of the decimal
-- strings of the events, never Float64); ratios and quantiles of seconds are the only floats.

CREATE TABLE IF NOT EXISTS ${database}.token_flows_1m
(
    bucket      DateTime('UTC'),
    contract_id LowCardinality(String),
    -- 'solver': the item's signer is the intent's solver; 'user': any other signer
    role        LowCardinality(String),
    -- the solver for role 'solver'; '*' for role 'user' (users are not a label)
    account_id  LowCardinality(String),
    -- token id as in the diff: nep141:<acct>, nep245:<acct>:<id>, nep171:<acct>:<id>
    token       String,
    -- successful receipts with a token_diff of this key (a receipt lies in one minute)
    settlements UInt64,
    intents     UInt64,
    -- sum of the positive side of the diffs, and of the negative side (as a positive number)
    volume_in   Int256,
    volume_out  Int256,
    fees        Int256,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id, role, account_id, token);

CREATE TABLE IF NOT EXISTS ${database}.token_flows_1h
(
    bucket      DateTime('UTC'),
    contract_id LowCardinality(String),
    -- 'solver': the item's signer is the intent's solver; 'user': any other signer
    role        LowCardinality(String),
    -- the solver for role 'solver'; '*' for role 'user' (users are not a label)
    account_id  LowCardinality(String),
    -- token id as in the diff: nep141:<acct>, nep245:<acct>:<id>, nep171:<acct>:<id>
    token       String,
    -- successful receipts with a token_diff of this key (a receipt lies in one minute)
    settlements UInt64,
    intents     UInt64,
    -- sum of the positive side of the diffs, and of the negative side (as a positive number)
    volume_in   Int256,
    volume_out  Int256,
    fees        Int256,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id, role, account_id, token);

CREATE TABLE IF NOT EXISTS ${database}.token_flows_1d
(
    bucket      DateTime('UTC'),
    contract_id LowCardinality(String),
    -- 'solver': the item's signer is the intent's solver; 'user': any other signer
    role        LowCardinality(String),
    -- the solver for role 'solver'; '*' for role 'user' (users are not a label)
    account_id  LowCardinality(String),
    -- token id as in the diff: nep141:<acct>, nep245:<acct>:<id>, nep171:<acct>:<id>
    token       String,
    -- successful receipts with a token_diff of this key (a receipt lies in one minute)
    settlements UInt64,
    intents     UInt64,
    -- sum of the positive side of the diffs, and of the negative side (as a positive number)
    volume_in   Int256,
    volume_out  Int256,
    fees        Int256,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id, role, account_id, token);

CREATE TABLE IF NOT EXISTS ${database}.solver_costs_1m
(
    bucket      DateTime('UTC'),
    contract_id LowCardinality(String),
    -- '*': every successful solver execution of the contract
    solver_id   LowCardinality(String),
    settlements UInt64,
    intents     UInt64,
    gas_burnt   UInt128,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id, solver_id);

CREATE TABLE IF NOT EXISTS ${database}.solver_costs_1h
(
    bucket      DateTime('UTC'),
    contract_id LowCardinality(String),
    -- '*': every successful solver execution of the contract
    solver_id   LowCardinality(String),
    settlements UInt64,
    intents     UInt64,
    gas_burnt   UInt128,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id, solver_id);

CREATE TABLE IF NOT EXISTS ${database}.solver_costs_1d
(
    bucket      DateTime('UTC'),
    contract_id LowCardinality(String),
    -- '*': every successful solver execution of the contract
    solver_id   LowCardinality(String),
    settlements UInt64,
    intents     UInt64,
    gas_burnt   UInt128,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id, solver_id);

CREATE TABLE IF NOT EXISTS ${database}.bridge_flows_1m
(
    bucket      DateTime('UTC'),
    contract_id         LowCardinality(String),
    -- the bridge is derived from token_contract when read (settings.bridges, indexer/bridges.py)
    token_contract      LowCardinality(String),
    token               String,
    withdrawals         UInt64,
    withdrawn           Int256,
    -- *_resolve_withdraw callbacks: ok, refunded (tokens minted back), failed (the callback failed)
    resolved            UInt64,
    resolved_ok         UInt64,
    refunded            UInt64,
    failed              UInt64,
    -- 'full refund' / 'partial refund' / the callback's failure message
    failure_reasons     Map(String, UInt64),
    refunded_amount     Int256,
    -- resolutions whose withdrawal was found at most 900 s earlier (same tx_hash and token)
    resolve_timed       UInt64,
    resolve_seconds_sum Float64,
    resolve_quantiles   AggregateFunction(quantilesExact(0.5, 0.9, 0.99), Nullable(Float64)),
    -- mt_mint on the contract other than refunds (deposits by ft_on_transfer / mt_on_transfer ...)
    deposits            UInt64,
    deposited           Int256,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id, token_contract, token);

CREATE TABLE IF NOT EXISTS ${database}.bridge_flows_1h
(
    bucket      DateTime('UTC'),
    contract_id         LowCardinality(String),
    -- the bridge is derived from token_contract when read (settings.bridges, indexer/bridges.py)
    token_contract      LowCardinality(String),
    token               String,
    withdrawals         UInt64,
    withdrawn           Int256,
    -- *_resolve_withdraw callbacks: ok, refunded (tokens minted back), failed (the callback failed)
    resolved            UInt64,
    resolved_ok         UInt64,
    refunded            UInt64,
    failed              UInt64,
    -- 'full refund' / 'partial refund' / the callback's failure message
    failure_reasons     Map(String, UInt64),
    refunded_amount     Int256,
    -- resolutions whose withdrawal was found at most 900 s earlier (same tx_hash and token)
    resolve_timed       UInt64,
    resolve_seconds_sum Float64,
    resolve_quantiles   AggregateFunction(quantilesExact(0.5, 0.9, 0.99), Nullable(Float64)),
    -- mt_mint on the contract other than refunds (deposits by ft_on_transfer / mt_on_transfer ...)
    deposits            UInt64,
    deposited           Int256,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id, token_contract, token);

CREATE TABLE IF NOT EXISTS ${database}.bridge_flows_1d
(
    bucket      DateTime('UTC'),
    contract_id         LowCardinality(String),
    -- the bridge is derived from token_contract when read (settings.bridges, indexer/bridges.py)
    token_contract      LowCardinality(String),
    token               String,
    withdrawals         UInt64,
    withdrawn           Int256,
    -- *_resolve_withdraw callbacks: ok, refunded (tokens minted back), failed (the callback failed)
    resolved            UInt64,
    resolved_ok         UInt64,
    refunded            UInt64,
    failed              UInt64,
    -- 'full refund' / 'partial refund' / the callback's failure message
    failure_reasons     Map(String, UInt64),
    refunded_amount     Int256,
    -- resolutions whose withdrawal was found at most 900 s earlier (same tx_hash and token)
    resolve_timed       UInt64,
    resolve_seconds_sum Float64,
    resolve_quantiles   AggregateFunction(quantilesExact(0.5, 0.9, 0.99), Nullable(Float64)),
    -- mt_mint on the contract other than refunds (deposits by ft_on_transfer / mt_on_transfer ...)
    deposits            UInt64,
    deposited           Int256,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, contract_id, token_contract, token);
