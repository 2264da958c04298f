"""The web UI's routes, fuzzed as the API's are in test_fuzz.py (a module of
its own, so that both halves run at once). See fuzzing.py.
"""

import fuzzing

# The shared fixtures, each set up for this module alone.
target_cluster = fuzzing.target_cluster
fuzzed = fuzzing.fuzzed
credentials = fuzzing.credentials
operations = fuzzing.operations


def test_every_web_ui_answer_matches_the_description(
    fuzzed, credentials, target_cluster, operations
):
    pages = [operation for operation in operations if fuzzing.of_the_web_ui(operation)]
    fuzzing.fuzz_every_operation(fuzzed, credentials, target_cluster, pages)
