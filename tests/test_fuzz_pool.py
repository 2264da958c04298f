"""The pool's three dialects (Datasentinel, pgwatch, Sequin), fuzzed as the
other API routes are in test_fuzz.py, with a token where each dialect's
clients send it. Generated sources point at hosts that do not resolve or at
the fuzzed cluster's closed neighbours: a create that must connect first is
refused fast, and nothing is ever reached outside 127.0.0.1. See fuzzing.py.
"""

import fuzzing

# The shared fixtures, each set up for this module alone.
target_cluster = fuzzing.target_cluster
fuzzed = fuzzing.fuzzed
credentials = fuzzing.credentials
operations = fuzzing.operations


def test_every_pool_answer_matches_the_description(fuzzed, credentials, target_cluster, operations):
    pool = [operation for operation in operations if fuzzing.of_the_pool(operation)]
    fuzzing.fuzz_every_operation(fuzzed, credentials, target_cluster, pool)
