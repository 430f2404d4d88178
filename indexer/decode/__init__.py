"""Decoding: raw Lake JSON -> rows for the tracked contracts.

``lake`` holds the msgspec views of the Lake JSON (only the fields we read), ``nep297`` the
``EVENT_JSON:`` log parser, ``receipt`` the tracked receipt every role decoder reads, ``emit``
the output they all write to and ``roles`` what a tracked contract is. ``dip4`` (with
``intent_hash``, the names of NEAR Intents payloads) and ``workshop`` are the role decoders;
``block`` sits above them and ties everything together per block.
"""

# Bumped whenever the same blocks decode to different rows, so stored rows can be told apart
# and re-indexed: 2 = failed NEAR Intents payloads are named by their intent hash (1: by
# <receipt_id>:<payload index>); 3 = rows no longer depend on the other contracts a stream tracks
# (blocks.tracked_receipts dropped, update_index per receipt, dead-letter seq per contract).
# 4 = intent_updates carry the submitting transaction's block and the accounts an intent moves
# tokens for, intent_lookups rows, and receipt chains through skipped shards resolve their tx_hash.
DECODER_VERSION = 4
# Not bumped for the receipt context, log index and decoder version that dead letters carry since
# migration 0003: no data row changes, and older dead letters simply cannot be retried.
