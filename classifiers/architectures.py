"""A spaCy textcat architecture with TF-IDF-scaled features: ``frontdoor.TextCatTfidfBOW.v1``.

spaCy's ``TextCatBOW`` feeds raw n-gram counts to its linear layer, so a long email outweighs
a text message and every "the" counts as much as "pothole"; on our corpus it trails a
scikit-learn TF-IDF + logistic regression baseline by several points. This architecture keeps
spaCy's textcat component, its hashed ``SparseLinear`` layer and softmax, and changes only the
features: word n-grams plus character n-grams of each word (robust to typos and spelling
variants), sublinear counts, inverse document frequency learnt from the training set, and each
document scaled to unit length. Importing this module registers the architecture.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any, cast

import numpy as np
from spacy.attrs import ORTH
from spacy.strings import hash_string  # type: ignore[attr-defined]
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, SparseLinear_v2, chain, softmax_activation

FEATURES = "tfidf_features"


@registry.architectures("frontdoor.TextCatTfidfBOW.v1")
def build_tfidf_bow_classifier(exclusive_classes: bool, ngram_size: int = 1, char_min: int = 3,
                               char_max: int = 5, length: int = 2**16, idf_length: int = 2**16,
                               scale: float = 1.0, nO: int | None = None) -> Model[Any, Any]:
    if not exclusive_classes:
        raise ValueError("frontdoor.TextCatTfidfBOW.v1 is for exclusive classes only")
    features = tfidf_features(ngram_size, char_min, char_max, idf_length, scale)
    sparse = SparseLinear_v2(nO=nO, length=length)
    model: Model[Any, Any] = chain(features, sparse, softmax_activation())
    if nO is not None:
        model.set_dim("nO", nO)
    model.set_ref("output_layer", sparse)
    model.set_ref(FEATURES, features)
    model.attrs["multi_label"] = False
    return model


def tfidf_features(ngram_size: int, char_min: int, char_max: int, idf_length: int,
                   scale: float) -> Model[Any, Any]:
    return Model(
        FEATURES, _forward, init=_init, params={"idf": None}, dims={"idf_length": idf_length},
        attrs={"ngram_size": ngram_size, "char_min": char_min, "char_max": char_max, "scale": scale},
    )


def _init(model: Model[Any, Any], X: Any = None, Y: Any = None) -> None:
    model.set_param("idf", cast(Any, np.ones((model.get_dim("idf_length"),), dtype="float32")))


def doc_keys(model: Model[Any, Any], doc: Doc) -> tuple[np.ndarray, np.ndarray]:
    """The distinct feature keys of one document and how often each occurs."""
    words = np.asarray(doc.to_array([ORTH]), dtype="uint64").reshape(-1)
    parts = [words]
    for n in range(2, model.attrs["ngram_size"] + 1):
        if len(words) >= n:
            parts.append(np.asarray(model.ops.ngrams(n, cast(Any, words)), dtype="uint64"))
    low, high = model.attrs["char_min"], model.attrs["char_max"]
    if high >= low > 0:
        parts.extend(_char_grams(token.lower_, low, high) for token in doc if token.is_alpha)
    keys = np.concatenate(parts) if parts else np.zeros((0,), dtype="uint64")
    unique, counts = np.unique(keys, return_counts=True)
    return unique, counts


@lru_cache(maxsize=100_000)
def _char_grams(word: str, low: int, high: int) -> np.ndarray:
    marked = f"<{word}>"
    grams = {marked[i:i + n] for n in range(low, high + 1) for i in range(len(marked) - n + 1)}
    grams.discard(marked)  # the whole word is already a word feature
    return np.array(sorted(hash_string("\x01" + g) for g in grams), dtype="uint64")


def _forward(model: Model[Any, Any], docs: list[Doc], is_train: bool) -> tuple[Any, Any]:
    idf = np.asarray(model.get_param("idf"))
    size = len(idf)
    all_keys, all_values, lengths = [], [], []
    for doc in docs:
        keys, counts = doc_keys(model, doc)
        values = (1.0 + np.log(counts)) * idf[keys % size]
        norm = float(np.sqrt((values * values).sum())) or 1.0
        all_keys.append(keys)
        all_values.append(values * (model.attrs["scale"] / norm))
        lengths.append(len(keys))
    keys_out = np.concatenate(all_keys) if all_keys else np.zeros((0,), dtype="uint64")
    values_out = (np.concatenate(all_values) if all_values else np.zeros((0,))).astype("float32")
    lengths_out = np.asarray(lengths, dtype="int32")
    return (keys_out, values_out, lengths_out), lambda _d: []


def fit_idf(model: Model[Any, Any], docs: Iterable[Doc]) -> None:
    """Learn inverse document frequencies (smoothed, as scikit-learn does) from training docs."""
    if not model.has_ref(FEATURES):
        return
    features = model.get_ref(FEATURES)
    size = features.get_dim("idf_length")
    frequency = np.zeros((size,), dtype="float64")
    n = 0
    for doc in docs:
        keys, _ = doc_keys(features, doc)
        np.add.at(frequency, np.unique(keys % size), 1.0)
        n += 1
    features.set_param("idf", cast(Any, (np.log((1.0 + n) / (1.0 + frequency)) + 1.0).astype("float32")))


def _murmur32(keys: np.ndarray, seed: int) -> np.ndarray:
    """thinc's ``MurmurHash3_x86_32_uint64`` over an array of keys: the rows ``SparseLinear``
    reads each feature's weights from (two hashes per key)."""
    with np.errstate(over="ignore"):
        c1, c2 = np.uint32(0xCC9E2D51), np.uint32(0x1B873593)
        h1 = np.full(keys.shape, seed, dtype=np.uint32)
        for k1 in ((keys & np.uint64(0xFFFFFFFF)).astype(np.uint32),
                   (keys >> np.uint64(32)).astype(np.uint32)):
            k1 = k1 * c1
            k1 = (k1 << np.uint32(15)) | (k1 >> np.uint32(17))
            k1 = k1 * c2
            h1 = h1 ^ k1
            h1 = (h1 << np.uint32(13)) | (h1 >> np.uint32(19))
            h1 = h1 * np.uint32(5) + np.uint32(0xE6546B64)
        h1 = h1 ^ np.uint32(8)
        h1 = h1 ^ (h1 >> np.uint32(16))
        h1 = h1 * np.uint32(0x85EBCA6B)
        h1 = h1 ^ (h1 >> np.uint32(13))
        h1 = h1 * np.uint32(0xC2B2AE35)
        h1 = h1 ^ (h1 >> np.uint32(16))
    return h1


def feature_matrix(model: Model[Any, Any], docs: list[Doc]) -> Any:
    """The documents as the sparse rows the textcat's linear layer multiplies: a SciPy CSR matrix
    with one column per weight row, so any linear learner fitted on it can be written back into
    the layer (``set_linear_weights``) and the pipeline scores exactly as that learner does."""
    from scipy.sparse import csr_matrix

    keys, values, lengths = model.get_ref(FEATURES).predict(docs)
    length = model.get_ref("output_layer").get_dim("length")
    rows = np.repeat(np.arange(len(lengths)), lengths)
    columns = np.concatenate([_murmur32(keys, 0) % length, _murmur32(keys, 1) % length]).astype(np.int64)
    matrix = csr_matrix((np.concatenate([values, values]), (np.concatenate([rows, rows]), columns)),
                        shape=(len(lengths), length), dtype=np.float64)
    matrix.sum_duplicates()
    return matrix


def set_linear_weights(model: Model[Any, Any], coef: np.ndarray, intercept: np.ndarray) -> None:
    """Write a linear learner's weights (classes × columns of ``feature_matrix``) into the layer."""
    layer = model.get_ref("output_layer")
    layer.set_param("W", cast(Any, np.ascontiguousarray(coef, dtype="float32").reshape(-1)))
    layer.set_param("b", cast(Any, np.asarray(intercept, dtype="float32")))
