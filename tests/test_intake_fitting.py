"""How a model is fitted: the parallel pass over a large history reads the statements
as the single-process pass does, and the probabilities shown to operators are calibrated."""

from __future__ import annotations

import numpy as np
import pytest

from ivr.intake import fitting
from ivr.intake.corpus import corpus_files, load_corpus


@pytest.mark.skipif(not corpus_files(), reason="no intake corpus shipped")
def test_parallel_features_equal_the_single_process_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = [e.text for e in load_corpus()[:400]]
    union, x = fitting.fit_features(texts)
    monkeypatch.setattr(fitting, "PARALLEL_ROWS", 100)
    parallel_union, parallel_x = fitting.fit_features(texts)
    for (_, one), (_, other) in zip(
        union.transformer_list, parallel_union.transformer_list, strict=True
    ):
        assert one.vocabulary_ == other.vocabulary_
        np.testing.assert_allclose(one.idf_, other.idf_)
    assert (x != parallel_x).nnz == 0
    # The fitted word vectorizer segments raw statements by itself.
    words = dict(parallel_union.transformer_list)["words"]
    assert words.transform(["小区停水了"]).nnz > 0


def test_sigmoid_calibration_recovers_the_true_probabilities() -> None:
    rng = np.random.default_rng(13)
    scores = rng.normal(0.0, 1.5, size=(20_000, 2))
    # Column 0: P(positive) = 1 / (1 + exp(-2 s + 0.5)); column 1: 1 / (1 + exp(-0.7 s - 1)).
    a_true, b_true = np.array([-2.0, -0.7]), np.array([0.5, -1.0])
    positive = rng.random(scores.shape) < 1.0 / (1.0 + np.exp(a_true * scores + b_true))
    a, b = fitting.platt(scores, positive)
    np.testing.assert_allclose(a, a_true, atol=0.1)
    np.testing.assert_allclose(b, b_true, atol=0.1)
