"""The learned part of intake: statement -> category, department and urgency probabilities.

Character 1-3 grams and jieba words (TF-IDF) feed one linear SVM per field,
sigmoid-calibrated on out-of-fold scores (ivr.intake.fitting) so that its
probabilities can be shown and compared with `intake.low_confidence`. Models are versioned files in
`storage_dir/models/` with a manifest naming the deployed one; without one, the
default model is trained from the shipped corpus at first use and cached under
the corpus hash.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from ivr.intake.corpus import Example, corpus_files, corpus_hash, load_corpus

log = logging.getLogger(__name__)

FIELDS = ("category", "department", "urgency", "scope")
MODELS_DIR = "models"
MANIFEST = "manifest.json"
CACHE_ENV = "IVR_MODEL_CACHE"
# Part of the default model's cache key: bump when a saved model's layout changes.
FORMAT = "intake-model-4"
# Bounds the model's size on a large history (weights: features x classes float32).
MAX_CHARS = 200_000
MAX_WORDS = 50_000


def words(text: str) -> list[str]:
    """jieba words (module-level so that a saved model can be loaded again)."""
    import jieba

    return [w for w in jieba.lcut(text, HMM=False) if w.strip()]


@dataclass(frozen=True)
class LinearProba:
    """A linear SVM with sigmoid calibrators (as CalibratedClassifierCV(LinearSVC,
    sigmoid, ensemble=False) makes them) as arrays: probabilities in one sparse product."""

    classes: np.ndarray
    weights: np.ndarray  # (n_features, n_scores) float32
    intercept: np.ndarray
    a: np.ndarray
    b: np.ndarray

    @classmethod
    def of_svm(cls, svm: Any, a: np.ndarray, b: np.ndarray) -> LinearProba:
        """A fitted LinearSVC and its sigmoid calibrators (one per column of its scores)."""
        return cls(
            classes=np.asarray(svm.classes_),
            weights=np.ascontiguousarray(svm.coef_.T, dtype=np.float32),
            intercept=svm.intercept_.astype(np.float32),
            a=np.asarray(a, dtype=np.float64),
            b=np.asarray(b, dtype=np.float64),
        )

    def predict_proba(self, x: Any) -> np.ndarray:
        return self.calibrate(np.asarray(x @ self.weights, dtype=np.float64) + self.intercept)

    def calibrate(self, scores: np.ndarray) -> np.ndarray:
        """The SVM's decision scores -> probabilities per class."""
        p = 1.0 / (1.0 + np.exp(self.a * scores + self.b))
        if len(self.classes) == 2:
            return np.column_stack([1.0 - p[:, 0], p[:, 0]])
        total = p.sum(axis=1, keepdims=True)
        uniform = np.full_like(p, 1.0 / len(self.classes))
        return np.divide(p, total, out=uniform, where=total != 0)

    def predict(self, x: Any) -> np.ndarray:
        return self.classes[np.argmax(self.predict_proba(x), axis=1)]


@dataclass(frozen=True)
class Prediction:
    label: str
    probability: float
    top: tuple[tuple[str, float], ...]


def _tfidf_rows(vec: TfidfVectorizer, text: str) -> tuple[np.ndarray, np.ndarray]:
    """One row of TfidfVectorizer.transform for sublinear_tf and l2 norm (as
    fitting.fit_features makes them): the column indexes and their weights."""
    vocabulary, idf = vec.vocabulary_, vec.idf_
    counts = Counter(
        i for token in vec.build_analyzer()(text) if (i := vocabulary.get(token)) is not None
    )
    cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
    w = (1.0 + np.log(tf)) * idf[cols]
    if len(w):
        w /= np.linalg.norm(w)
    return cols, w


_DISTRICT_GOVERNMENT = re.compile(r"^(.+区)人民政府$")
DISTRICT_GOVERNMENT = "区人民政府"
DISTRICT_MASK = ""


def districts_of(labels: Iterable[str]) -> tuple[str, ...]:
    """The districts whose governments are departments (五华区 of 五华区人民政府)."""
    found = {m.group(1) for label in labels if (m := _DISTRICT_GOVERNMENT.match(label or ""))}
    return tuple(sorted(found, key=len, reverse=True))


@dataclass
class IntakeModel:
    """Statements are read with district names masked: which district a matter is in
    says nothing about who handles it, so the five district governments are one class
    (区人民政府) and the district named in the statement picks the government."""

    version: str
    features: FeatureUnion
    classifiers: dict[str, LinearProba]
    info: dict[str, Any] = field(default_factory=dict)
    districts: tuple[str, ...] = ()

    def _names(self) -> list[str]:
        return [n for d in self.districts for n in (d, d.removesuffix("区")) if len(n) >= 2]

    def mask(self, text: str) -> str:
        for name in self._names():
            text = text.replace(name, DISTRICT_MASK)
        return text

    def district_government(self, text: str) -> str | None:
        said = [(text.find(n), n) for n in self._names() if n in text]
        if not said:
            return None
        name = min(said)[1]
        district = next(d for d in self.districts if d.startswith(name))
        return f"{district}人民政府"

    def _label(self, label: str, text: str) -> str:
        if label == DISTRICT_GOVERNMENT:
            return self.district_government(text) or label
        return label

    def vectorize(self, texts: Sequence[str]) -> Any:
        """The fitted FeatureUnion's output, computed directly: scikit-learn's input
        validation costs more than the arithmetic for one statement. float32 like the
        weights (scipy would copy them to float64 for every product)."""
        vecs = [vec for _, vec in self.features.transformer_list]
        offsets = np.cumsum([0] + [len(v.vocabulary_) for v in vecs])
        indptr, indices, values = [0], [], []
        for text in texts:
            masked = self.mask(text)
            for offset, vec in zip(offsets, vecs, strict=False):
                cols, w = _tfidf_rows(vec, masked)
                indices.append(cols + offset)
                values.append(w)
            indptr.append(indptr[-1] + sum(len(c) for c in indices[-len(vecs) :]))
        return sparse.csr_matrix(
            (
                np.concatenate(values).astype(np.float32),
                np.concatenate(indices),
                np.asarray(indptr, dtype=np.int64),
            ),
            shape=(len(texts), int(offsets[-1])),
        )

    def predict(self, texts: Sequence[str]) -> list[dict[str, Prediction]]:
        """Per statement: field -> the most likely label, its probability and the top three."""
        x = self.vectorize(texts)
        out: list[dict[str, Prediction]] = [{} for _ in texts]
        for name, clf in self.classifiers.items():
            proba = clf.predict_proba(x)
            classes = clf.classes
            for row, p in enumerate(proba):
                order = np.argsort(-p)[:3]
                top = tuple(
                    (self._label(str(classes[i]), texts[row]), round(float(p[i]), 4)) for i in order
                )
                out[row][name] = Prediction(top[0][0], top[0][1], top)
        return out

    def predict_one(self, text: str) -> dict[str, Prediction]:
        return self.predict([text])[0]

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"intake-{self.version}.joblib"
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        joblib.dump(self, tmp, compress=1)
        tmp.replace(path)
        return path


def training_label(value: str | None, name: str) -> str | None:
    if name == "department" and value and _DISTRICT_GOVERNMENT.match(value):
        return DISTRICT_GOVERNMENT
    # An out-of-scope row without a department teaches nothing about routing.
    return value or None


def accuracy(model: IntakeModel, examples: Sequence[Example]) -> dict[str, float]:
    """Share of rows whose category / department the model gets right (labels it has)."""
    if not examples:
        return {}
    predictions = model.predict([e.text for e in examples])
    result = {}
    for name in ("category", "department"):
        if name not in model.classifiers:
            continue
        pairs = zip(predictions, examples, strict=True)
        right = sum(p[name].label == getattr(e, name) for p, e in pairs)
        result[name] = right / len(examples)
    return result


def score(acc: dict[str, float]) -> float:
    """One number to compare models: the mean of category and department accuracy."""
    return (acc.get("category", 0.0) + acc.get("department", 0.0)) / 2


# -- the model store ------------------------------------------------------------


def models_dir(storage: Path) -> Path:
    return storage / MODELS_DIR


def read_manifest(storage: Path) -> dict[str, Any]:
    path = models_dir(storage) / MANIFEST
    if not path.exists():
        return {"current": None, "models": []}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def write_manifest(storage: Path, manifest: dict[str, Any]) -> None:
    path = models_dir(storage) / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(path)


def new_version(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")


def deploy(storage: Path, model: IntakeModel) -> Path:
    """Save the model and make it the current one."""
    path = model.save(models_dir(storage))
    manifest = read_manifest(storage)
    manifest["models"] = [m for m in manifest["models"] if m["version"] != model.version]
    manifest["models"].append({"version": model.version, "file": path.name, **model.info})
    manifest["current"] = model.version
    write_manifest(storage, manifest)
    _cache.clear()
    return path


def load(path: Path) -> IntakeModel:
    model = joblib.load(path)
    if not isinstance(model, IntakeModel):
        raise ValueError(f"{path} is not an intake model")
    return model


def shared_cache() -> Path:
    """Where default models are also kept for every storage folder of this user
    (IVR_MODEL_CACHE, else ~/.cache/hotline-ivr): one training per corpus version."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "hotline-ivr"


def default_model(storage: Path) -> IntakeModel | None:
    """The model of the shipped corpus, trained once per corpus version and cached."""
    files = corpus_files()
    if not files:
        return None
    version = f"default-{corpus_hash(files, salt=FORMAT)}"
    if version in _defaults:
        return _defaults[version]
    name = f"intake-{version}.joblib"
    for folder in (models_dir(storage), shared_cache()):
        if (folder / name).exists():
            try:
                _defaults[version] = load(folder / name)
                return _defaults[version]
            except (OSError, ValueError, EOFError) as exc:
                log.warning("intake model %s unreadable, training again: %s", folder / name, exc)
    examples = [e for e in load_corpus(files) if e.split != "test"]
    if not examples:
        return None
    started = time.perf_counter()
    from ivr.intake.fitting import fit

    model = fit(examples, version, {"source": "corpus", "rows": len(examples)})
    log.info(
        "intake model %s trained from the corpus (%d rows) in %.1f s",
        version,
        len(examples),
        time.perf_counter() - started,
    )
    for folder in (models_dir(storage), shared_cache()):
        try:
            model.save(folder)
        except OSError as exc:
            log.warning("intake model not cached in %s: %s", folder, exc)
    _defaults[version] = model
    return model


def current_file(storage: Path) -> Path | None:
    manifest = read_manifest(storage)
    entry = next((m for m in manifest["models"] if m["version"] == manifest["current"]), None)
    if entry is None:
        return None
    path = models_dir(storage) / entry["file"]
    return path if path.exists() else None


_cache: dict[Path, IntakeModel | None] = {}
_defaults: dict[str, IntakeModel] = {}
_lock = threading.Lock()


def current(storage: Path) -> IntakeModel | None:
    """The deployed model, or the default one; loaded once per process."""
    key = storage.resolve()
    with _lock:
        if key not in _cache:
            path = current_file(storage)
            _cache[key] = load(path) if path else default_model(storage)
        return _cache[key]
