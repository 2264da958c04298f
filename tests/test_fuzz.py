"""The API contract, fuzzed: every route of the API but the later plugins'
and the pool's (those are in test_fuzz_plugins.py and test_fuzz_pool.py, the
web UI's in test_fuzz_ui.py, each run beside the others) gets schemathesis's
generated requests, valid and not, from /openapi.json. Every answer must be
described (status, media type, body schema) and none may be a 5xx. See
fuzzing.py.
"""

import fuzzing

# The shared fixtures, each set up for this module alone.
target_cluster = fuzzing.target_cluster
fuzzed = fuzzing.fuzzed
credentials = fuzzing.credentials
operations = fuzzing.operations


def test_every_api_answer_matches_the_description(fuzzed, credentials, target_cluster, operations):
    api = [
        operation
        for operation in operations
        if not fuzzing.of_the_web_ui(operation)
        and not fuzzing.of_later_plugins(operation)
        and not fuzzing.of_the_pool(operation)
    ]
    fuzzing.fuzz_every_operation(fuzzed, credentials, target_cluster, api)
