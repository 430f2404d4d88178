#!/bin/sh
# The compose `demo` profile's daemon: writes a simulated NEAR Lake with an incident (once per
# volume), then indexes it with `intents-indexer run`, which then waits at its head.
#
#   DEMO_LAKE     folder of the simulated lake (default ./demo-lake)
#   DEMO_BLOCKS   heights to simulate (default 9000: 90 minutes of chain at 0.6 s a block)
#   DEMO_COLLAPSE the incident, as simulate's --incident-solver-collapse (default: the busiest
#                 solver succeeds in 20% of its executions over the last 40% of the lake, which
#                 fires SolverSuccessRateLow)
#
# The lake ends at the time it is written, so the dashboards' "last 3 hours" show all of it.
# The store and everything else come from the INDEXER_* environment, as for any command.
set -eu

LAKE="${DEMO_LAKE:-./demo-lake}"
BLOCKS="${DEMO_BLOCKS:-9000}"
COLLAPSE="${DEMO_COLLAPSE:-1@$((BLOCKS * 6 / 10)):0.2}"
START_HEIGHT=175000000

if [ ! -f "$LAKE/truth.json" ]; then
    start_time=$(python -c "import datetime, sys; print((datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=float(sys.argv[1]) * 0.66)).strftime('%Y-%m-%dT%H:%M:%SZ'))" "$BLOCKS")
    echo "demo: simulating $BLOCKS blocks from $start_time into $LAKE (incident: solver collapse $COLLAPSE)" >&2
    intents-indexer simulate --out "$LAKE" --blocks "$BLOCKS" --start-height "$START_HEIGHT" \
        --start-time "$start_time" --noise-bytes-per-block 4000 --malformed-rate 0.002 \
        --incident-solver-collapse "$COLLAPSE" --quiet --force
fi

# The contracts (with their roles) and solver accounts of the lake, as simulate's backfill line has them.
contracts=$(python -c "import json, sys; t = json.load(open(sys.argv[1])); print(' '.join(['--contract ' + c for c in t['contracts']] + ['--solver-account ' + a for a in t['solver_accounts']]))" "$LAKE/truth.json")
echo "demo: indexing $LAKE from $START_HEIGHT" >&2
# shellcheck disable=SC2086 # one word per flag and contract
exec intents-indexer run --source "files:$LAKE" --start-block "$START_HEIGHT" $contracts
