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
from spacy.attrs import IS_ALPHA, LOWER, ORTH
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
    keys = np.concatenate(token_keys(model, doc)[0])
    unique, counts = np.unique(keys, return_counts=True)
    return unique, counts


def token_keys(model: Model[Any, Any], doc: Doc) -> tuple[list[np.ndarray], np.ndarray]:
    """The document's feature keys in parts (words, then each n-gram size, then each alphabetic
    word's character n-grams), and the lower-case form's id of each token. Read from the
    document's arrays, not from Token objects: building those was a third of classifying."""
    table = np.asarray(doc.to_array([ORTH, LOWER, IS_ALPHA]), dtype="uint64").reshape(-1, 3)
    words = np.ascontiguousarray(table[:, 0])
    parts = [words]
    for n in range(2, model.attrs["ngram_size"] + 1):
        if len(words) >= n:
            parts.append(np.asarray(model.ops.ngrams(n, cast(Any, words)), dtype="uint64"))
    low, high = model.attrs["char_min"], model.attrs["char_max"]
    if high >= low > 0:
        strings = doc.vocab.strings
        parts.extend(_char_grams_of(strings, int(lower), low, high)
                     for lower, alpha in zip(table[:, 1], table[:, 2], strict=True) if alpha)
    return parts, table[:, 1]


_GRAMS_BY_ID: dict[tuple[int, int, int], np.ndarray] = {}
_MAX_GRAMS_BY_ID = 200_000


def _char_grams_of(strings: Any, lower: int, low: int, high: int) -> np.ndarray:
    """``_char_grams`` of the word with string id ``lower``, kept by id (a dictionary look-up
    instead of a string and a cache key per token)."""
    key = (lower, low, high)
    grams = _GRAMS_BY_ID.get(key)
    if grams is None:
        if len(_GRAMS_BY_ID) >= _MAX_GRAMS_BY_ID:  # a long-running router meets new words forever
            _GRAMS_BY_ID.clear()
        grams = _GRAMS_BY_ID[key] = _char_grams(strings[lower], low, high)
    return grams


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


class LinearScorer:
    """A fitted ``frontdoor.TextCatTfidfBOW.v1`` textcat's forward pass in NumPy, on a document
    already tokenised: the same logits as the spaCy pipeline (to float32 rounding) without
    its per-call machinery, so one tokenisation serves the department, enquiry-type and
    safeguarding models alike, and an explanation costs one batch of arithmetic instead of a
    dozen passes of the pipeline over edited copies of the text (``occlusion``)."""

    def __init__(self, model: Model[Any, Any], labels: list[str]) -> None:
        self.features = model.get_ref(FEATURES)
        self.layer = model.get_ref("output_layer")
        self.labels = labels
        self.idf = np.asarray(self.features.get_param("idf"), dtype="float64")
        self.scale = float(self.features.attrs["scale"])
        self._last: tuple[Doc, list[np.ndarray], np.ndarray] | None = None

    @classmethod
    def of(cls, nlp: Any) -> LinearScorer | None:
        """The scorer of a pipeline's ``textcat``, or None when it is not this architecture."""
        if "textcat" not in nlp.pipe_names:
            return None
        textcat = nlp.get_pipe("textcat")
        model = textcat.model
        if not (model.has_ref(FEATURES) and model.has_ref("output_layer")):
            return None
        return cls(model, list(textcat.labels))

    def _token_keys(self, doc: Doc) -> tuple[list[np.ndarray], np.ndarray]:
        """``token_keys`` of the document, kept for the last one (its explanation reads them again)."""
        last = self._last  # one read: another thread may replace it meanwhile
        if last is None or last[0] is not doc:
            last = self._last = (doc, *token_keys(self.features, doc))
        return last[1], last[2]

    def logits(self, doc: Doc) -> np.ndarray:
        """One row of logits (over ``self.labels``) for ``doc``."""
        keys, counts = np.unique(np.concatenate(self._token_keys(doc)[0]), return_counts=True)
        values = (1.0 + np.log(counts)) * self.idf[keys % np.uint64(len(self.idf))]
        norm = float(np.sqrt(values @ values)) or 1.0
        batch = (keys, (values * (self.scale / norm)).astype("float32"), np.array([len(keys)], dtype="int32"))
        return np.asarray(self.layer.predict(batch), dtype="float64")[0]

    def _logits(self, keys: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Logits for rows of counts (documents × ``keys``); a zero count is an absent key."""
        idf = self.idf[keys % np.uint64(len(self.idf))]
        values = np.where(counts > 0, (1.0 + np.log(np.maximum(counts, 1.0))) * idf, 0.0)
        norms = np.sqrt((values * values).sum(axis=1, keepdims=True))
        values = values * (self.scale / np.where(norms > 0, norms, 1.0))
        # each key's weights once (keys × labels: the layer on one-key documents, less its
        # bias), then every row is one small product
        single = (np.ascontiguousarray(keys, dtype="uint64"), np.ones(len(keys), dtype="float32"),
                  np.ones(len(keys), dtype="int32"))
        bias = np.asarray(self.layer.get_param("b"), dtype="float64")
        weights = np.asarray(self.layer.predict(single), dtype="float64") - bias
        return values @ weights + bias

    def occlusion(self, doc: Doc, removals: list[set[int]], label: int) -> np.ndarray:
        """The log-odds of ``label``, log(p / (1 - p)), for each removal: the document without every
        token whose lower-case
        form's id is in the set (its word, the n-grams it is part of, its character n-grams).
        The n-grams an edited text would form across the gap are not added: they are n-grams
        no training text had, whose weights are near zero. All removals in one batch."""
        parts, lowers = self._token_keys(doc)
        n_tokens = len(lowers)
        # each key occurrence's first token and how many tokens it spans: words, n-grams in
        # the order token_keys gives them, then each alphabetic word's character n-grams
        firsts, spans = [np.arange(n_tokens)], [np.ones(n_tokens, dtype=int)]
        for n in range(2, self.features.attrs["ngram_size"] + 1):
            if n_tokens >= n:
                firsts.append(np.arange(n_tokens - n + 1))
                spans.append(np.full(n_tokens - n + 1, n))
        grams = parts[len(firsts):]
        if grams:
            alpha = np.flatnonzero(np.asarray(doc.to_array([IS_ALPHA])).reshape(-1))
            sizes = [len(g) for g in grams]
            firsts.append(np.repeat(alpha, sizes))
            spans.append(np.ones(sum(sizes), dtype=int))
        first, span = np.concatenate(firsts), np.concatenate(spans)
        unique, inverse = np.unique(np.concatenate(parts), return_inverse=True)
        # which tokens each removal takes out (removals × tokens), through a column per word
        columns = {lower: i for i, lower in enumerate(sorted({w for gone in removals for w in gone}))}
        chosen = np.zeros((len(removals), len(columns) + 1), dtype=bool)  # the last: no word
        for row, gone in enumerate(removals):
            chosen[row, [columns[w] for w in gone]] = True
        removed = chosen[:, [columns.get(lower, len(columns)) for lower in lowers.tolist()]]
        # an occurrence goes when any token it spans goes; what is left, counted per distinct key
        cumulative = np.concatenate([np.zeros((len(removals), 1), dtype=int), removed.cumsum(axis=1)], axis=1)
        kept = (cumulative[:, first + span] - cumulative[:, first]) == 0
        order = np.argsort(inverse, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(inverse[order]) > 0])
        counts = np.add.reduceat(kept[:, order].astype(float), starts, axis=1)
        logits = self._logits(unique, counts)
        others = np.delete(logits, label, axis=1)
        top = others.max(axis=1, keepdims=True)
        return logits[:, label] - (top[:, 0] + np.log(np.exp(others - top).sum(axis=1)))
