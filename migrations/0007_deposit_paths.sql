-- Deposits by path (README "Rollup tables", indexer/rollup/economics.py): the bridge_flows
-- deposits split by the method of the receipt whose mt_mint minted them, ft_on_transfer (a NEP-141
-- token's ft_transfer_call) or mt_on_transfer (a NEP-245 token's mt_transfer_call). Deposits by any
-- other path are deposits - ft_deposits - mt_deposits. Buckets written before this migration read 0
-- here until `intents-indexer rollup --rebuild` recomputes them.

ALTER TABLE ${database}.bridge_flows_1m
    ADD COLUMN IF NOT EXISTS ft_deposits  UInt64 DEFAULT 0 AFTER deposited,
    ADD COLUMN IF NOT EXISTS ft_deposited Int256 DEFAULT 0 AFTER ft_deposits,
    ADD COLUMN IF NOT EXISTS mt_deposits  UInt64 DEFAULT 0 AFTER ft_deposited,
    ADD COLUMN IF NOT EXISTS mt_deposited Int256 DEFAULT 0 AFTER mt_deposits;

ALTER TABLE ${database}.bridge_flows_1h
    ADD COLUMN IF NOT EXISTS ft_deposits  UInt64 DEFAULT 0 AFTER deposited,
    ADD COLUMN IF NOT EXISTS ft_deposited Int256 DEFAULT 0 AFTER ft_deposits,
    ADD COLUMN IF NOT EXISTS mt_deposits  UInt64 DEFAULT 0 AFTER ft_deposited,
    ADD COLUMN IF NOT EXISTS mt_deposited Int256 DEFAULT 0 AFTER mt_deposits;

ALTER TABLE ${database}.bridge_flows_1d
    ADD COLUMN IF NOT EXISTS ft_deposits  UInt64 DEFAULT 0 AFTER deposited,
    ADD COLUMN IF NOT EXISTS ft_deposited Int256 DEFAULT 0 AFTER ft_deposits,
    ADD COLUMN IF NOT EXISTS mt_deposits  UInt64 DEFAULT 0 AFTER ft_deposited,
    ADD COLUMN IF NOT EXISTS mt_deposited Int256 DEFAULT 0 AFTER mt_deposits;
