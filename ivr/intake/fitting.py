"""Fitting an intake model: features once, cross-validated SVMs, sigmoid calibration.

One pass over the rows segments every text once (jieba, in parallel on a large
history) and fits both vectorizers. Per field, the SVMs of the k folds give every
row an out-of-fold score: those scores are both the printed k-fold accuracy and
what the sigmoid calibrators are fitted on (as CalibratedClassifierCV with
ensemble=False does, without fitting the folds twice); one more SVM on all rows is
the deployed one. The fits run in threads: liblinear releases the GIL.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC

from ivr.intake.corpus import Example
from ivr.intake.model import (
    FIELDS,
    MAX_CHARS,
    MAX_WORDS,
    IntakeModel,
    LinearProba,
    districts_of,
    training_label,
    words,
)

__all__ = ["fit", "fit_with_kfold"]

log = logging.getLogger(__name__)

# Below this many rows, worker processes cost more than they save.
PARALLEL_ROWS = 5_000
JOBS = 2
CHUNKS = 8
# Folds that calibrate the probabilities when no k-fold accuracy is asked for.
CALIBRATION_FOLDS = 3
_NEWTON_STEPS = 100
_HALVINGS = 30


def _tokens(doc: Any) -> Any:
    """The analyzer while fitting on texts segmented beforehand."""
    return doc


def _segment(texts: Sequence[str]) -> list[list[str]]:
    return [words(t) for t in texts]


def _fit_chars(texts: Sequence[str]) -> tuple[TfidfVectorizer, Any]:
    vec = TfidfVectorizer(
        analyzer="char",
        ngram_range=(1, 3),
        sublinear_tf=True,
        max_features=MAX_CHARS,
        dtype=np.float32,
    )
    return vec, vec.fit_transform(texts)


def _fit_words(segmented: Sequence[list[str]]) -> tuple[TfidfVectorizer, Any]:
    vec = TfidfVectorizer(
        analyzer=_tokens, sublinear_tf=True, max_features=MAX_WORDS, dtype=np.float32
    )
    x = vec.fit_transform(segmented)
    # From now on it reads raw statements (the saved model segments them itself).
    vec.set_params(analyzer=words)
    return vec, x


def fit_features(texts: Sequence[str]) -> tuple[FeatureUnion, Any]:
    """Both vectorizers fitted, and the rows' features. On a large history the
    segmentation (in chunks) and the character n-grams run in two processes."""
    jobs = JOBS if len(texts) >= PARALLEL_ROWS else 1
    size = -(-len(texts) // CHUNKS) if jobs > 1 else max(1, len(texts))
    chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
    with Parallel(n_jobs=jobs) as run:
        done = run([delayed(_fit_chars)(texts), *(delayed(_segment)(c) for c in chunks)])
    chars, x_chars = done[0]
    word_vec, x_words = _fit_words([tokens for part in done[1:] for tokens in part])
    union = FeatureUnion([("chars", chars), ("words", word_vec)], n_jobs=1)
    return union, sparse.hstack([x_chars, x_words], format="csr", dtype=np.float32)


def _svm() -> LinearSVC:
    return LinearSVC(C=0.5)


def _scores(svm: LinearSVC, x: Any, classes: np.ndarray) -> np.ndarray:
    """Decision scores as (rows, classes), 0 for a class this SVM did not see
    (a fold without it); one column for two classes."""
    raw = svm.decision_function(x)
    if len(classes) == 2:
        return np.asarray(raw, dtype=np.float64).reshape(-1, 1)
    out = np.zeros((x.shape[0], len(classes)))
    if raw.ndim == 1:  # the fold saw two of the classes
        raw = np.column_stack([-raw, raw])
    out[:, np.searchsorted(classes, svm.classes_)] = raw
    return out


def platt(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid calibration, P = 1 / (1 + exp(a * score + b)) per column, fitted on
    out-of-fold scores with Platt's smoothed targets: Newton's method with step halving
    (Lin, Lin and Weng 2007), all columns at once."""
    n, k = scores.shape
    pos = positive.sum(axis=0)
    target = np.where(positive, (pos + 1.0) / (pos + 2.0), 1.0 / (n - pos + 2.0))

    def loss(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        z = scores * a + b
        return np.sum(np.logaddexp(0.0, z) - (1.0 - target) * z, axis=0)

    a, b = np.zeros(k), np.log((n - pos + 1.0) / (pos + 1.0))
    value = loss(a, b)
    for _ in range(_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(scores * a + b))  # P(positive)
        r, w = target - p, p * (1.0 - p) + 1e-12
        ga, gb = (r * scores).sum(axis=0), r.sum(axis=0)
        if max(np.abs(ga).max(), np.abs(gb).max()) < 1e-5 * n:
            break
        haa, hab, hbb = (w * scores * scores).sum(axis=0), (w * scores).sum(axis=0), w.sum(axis=0)
        det = haa * hbb - hab * hab
        da, db = -(hbb * ga - hab * gb) / det, -(haa * gb - hab * ga) / det
        step = np.ones(k)
        todo = np.ones(k, dtype=bool)
        for _ in range(_HALVINGS):
            tried = loss(a + step * da, b + step * db)
            better = todo & (tried < value + 1e-4 * step * (ga * da + gb * db))
            a, b = np.where(better, a + step * da, a), np.where(better, b + step * db, b)
            value = np.where(better, tried, value)
            todo &= ~better
            if not todo.any():
                break
            step = np.where(todo, step / 2, step)
    return a, b


def _trainable(labels: Sequence[str | None]) -> list[int]:
    """Row indexes with a label; a class seen once is repeated (a fold splits it in two)."""
    idx = [i for i, y in enumerate(labels) if y is not None]
    counts = Counter(labels[i] for i in idx)
    return idx + [i for i in list(idx) if counts[labels[i]] == 1]


def _fit_svm(x: Any, y: np.ndarray) -> LinearSVC:
    return _svm().fit(x, y)


def fit_with_kfold(
    examples: Sequence[Example],
    version: str,
    info: dict[str, Any] | None = None,
    folds: int = 0,
) -> tuple[IntakeModel, dict[str, float]]:
    """The model, and (folds >= 2) the k-fold accuracy of category and department on
    these rows: the fold models' out-of-fold scores through the calibrators fitted on
    them (two numbers per class), and the TF-IDF vocabulary fitted once on all rows:
    a small optimism, as before."""
    districts = districts_of(e.department for e in examples)
    # Its features are fitted below, on the statements it masks.
    shell = IntakeModel(version, FeatureUnion([]), {}, dict(info or {}), districts)
    started = time.perf_counter()
    shell.features, x = fit_features([shell.mask(e.text) for e in examples])
    featured = time.perf_counter()
    k = folds if folds >= 2 else CALIBRATION_FOLDS
    plans: dict[str, tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]] = {}
    for name in FIELDS:
        labels = [training_label(getattr(e, name), name) for e in examples]
        idx = np.array(_trainable(labels), dtype=np.int64)
        y = np.array([labels[i] for i in idx])
        if len(set(y)) < 2:
            continue
        smallest = min(Counter(y).values())
        # Unshuffled, as CalibratedClassifierCV splits: the same calibration as before.
        splitter = StratifiedKFold(n_splits=min(k, max(2, smallest)))
        plans[name] = (idx, y, list(splitter.split(np.zeros(len(y)), y)))
    jobs = [
        (name, fold, train)
        for name, (_, _, splits) in plans.items()
        for fold, (train, _) in enumerate([*splits, (None, None)])
    ]
    parallel = JOBS if len(examples) >= PARALLEL_ROWS else 1
    with Parallel(n_jobs=parallel, prefer="threads") as run:
        fitted = run(
            delayed(_fit_svm)(
                x[plans[name][0] if train is None else plans[name][0][train]],
                plans[name][1] if train is None else plans[name][1][train],
            )
            for name, _, train in jobs
        )
    svms = {(name, fold): svm for (name, fold, _), svm in zip(jobs, fitted, strict=True)}
    trained = time.perf_counter()
    kfold: dict[str, float] = {}
    for name, (idx, y, splits) in plans.items():
        final: LinearSVC = svms[(name, len(splits))]
        classes = final.classes_
        scores = np.zeros((len(y), 1 if len(classes) == 2 else len(classes)))
        for fold, (_, test) in enumerate(splits):
            scores[test] = _scores(svms[(name, fold)], x[idx[test]], classes)
        positive = (y == classes[1]).reshape(-1, 1) if len(classes) == 2 else y[:, None] == classes
        a, b = platt(scores, positive)
        proba = LinearProba.of_svm(final, a, b)
        shell.classifiers[name] = proba
        if folds >= 2 and name in ("category", "department"):
            out_of_fold = proba.calibrate(scores)
            kfold[name] = float((classes[np.argmax(out_of_fold, axis=1)] == y).mean())
    log.info(
        "intake model %s: %d rows, %d features in %.1f s, %d SVMs in %.1f s, calibrated in %.1f s",
        version,
        len(examples),
        x.shape[1],
        featured - started,
        len(jobs),
        trained - featured,
        time.perf_counter() - trained,
    )
    return shell, kfold


def fit(
    examples: Sequence[Example], version: str, info: dict[str, Any] | None = None
) -> IntakeModel:
    return fit_with_kfold(examples, version, info)[0]
