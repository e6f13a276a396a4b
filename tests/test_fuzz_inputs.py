"""Property tests with hostile inputs (see tests/fuzzing.py for what must hold): a few examples each
here; ``make fuzz`` runs the same targets for as long as it is given."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzzing

FAST = settings(max_examples=15, deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FAST
@given(fuzzing.folders())
def test_a_hostile_folder_loads_soundly_or_is_one_line(plan):
    fuzzing.check_folder(plan)


@FAST
@given(fuzzing.image_files(), st.sampled_from([(8, 8, 1), (5, 7, 3), (1, 1, 3)]))
def test_a_hostile_image_file_is_read_or_named(plan, shape):
    fuzzing.check_image_file(plan, shape)


@settings(FAST, max_examples=40)
@given(fuzzing.specs())
def test_a_hostile_spec_builds_one_score_per_class_or_is_one_line(plan):
    fuzzing.check_spec(plan)


@FAST
@given(fuzzing.model_jsons())
def test_a_hostile_run_folder_predicts_soundly_or_is_one_line(plan):
    fuzzing.check_model_json(plan)


@settings(FAST, max_examples=5)
@given(fuzzing.image_files())
def test_predict_on_a_hostile_file_never_shows_a_traceback(plan):
    fuzzing.check_predict_cli(plan)
