"""The maintenance, pgconf and statements API routes, fuzzed as the others
are in test_fuzz.py (a module of its own, so that the parts run at once). See
fuzzing.py.
"""

import fuzzing

# The shared fixtures, each set up for this module alone.
target_cluster = fuzzing.target_cluster
fuzzed = fuzzing.fuzzed
credentials = fuzzing.credentials
operations = fuzzing.operations


def test_every_later_plugin_answer_matches_the_description(
    fuzzed, credentials, target_cluster, operations
):
    api = [operation for operation in operations if fuzzing.of_later_plugins(operation)]
    fuzzing.fuzz_every_operation(fuzzed, credentials, target_cluster, api)
