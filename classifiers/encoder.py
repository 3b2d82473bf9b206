"""A pretrained sentence encoder beside the TF-IDF model: what a message means, not only its words.

The TF-IDF model knows the words the corpus used; a resident who writes "the chute on my landing
stinks and there are flies everywhere" without one of them is guessed at. A sentence encoder
trained on a billion sentence pairs (all-MiniLM-L6-v2, Apache-2.0, quantised to 8 bits: 23 MB,
run by ONNX Runtime) places that message near the messages about refuse that it has never seen
word for word. Training fits a logistic regression on its vectors and blends it with the TF-IDF
model's logits at a weight chosen on dev (``EncoderHead``); on the project's hardest hand-written
set the blend is 6 points more accurate than the TF-IDF model alone.

The encoder's files ship with the package (``classifiers/encoders/<name>/``: ``model.onnx``,
``tokenizer.json``, their source and digests in ``README.md``), so a model that uses one needs
no download. Vectors are cached by text digest when a cache file is given (training encodes the
same corpus again and again).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from schemas.errors import OperatorError

ENCODERS = Path(__file__).parent / "encoders"
DEFAULT_ENCODER = "all-minilm-l6-v2-q"
MAX_TOKENS = 128  # what all-MiniLM-L6-v2 was trained on; a long message's start carries its request
_CHUNK = 256  # texts between progress reports
# 128 word pieces never need more characters than this; a megabyte body is not tokenised whole
_MAX_CHARS = 4000


class SentenceEncoder:
    """Mean-pooled, unit-length sentence vectors from an ONNX transformer and its tokenizer."""

    def __init__(self, name: str = DEFAULT_ENCODER, *, threads: int = 1, cache: Path | None = None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        directory = ENCODERS / name
        if not (directory / "model.onnx").is_file() or not (directory / "tokenizer.json").is_file():
            found = sorted(p.name for p in ENCODERS.iterdir() if p.is_dir()) if ENCODERS.is_dir() else []
            known = ", ".join(found)
            raise OperatorError(f"no sentence encoder {name!r} in {ENCODERS} (known: {known or 'none'}): "
                                "train with '--encoder none' or reinstall the package")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one text is too small to share; ``threads`` texts run at once
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.name = name
        self._session = onnxruntime.InferenceSession(str(directory / "model.onnx"), options,
                                                     providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()  # the file pads every text to 128 tokens
        self.dimension = int(self._session.get_outputs()[0].shape[-1])
        self._threads = max(1, threads)
        self._cache = _VectorCache(cache, name, self.dimension) if cache is not None else None

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """One unit-length row per text (float32), in the order given."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        cached = self._cache.get(texts) if self._cache is not None else {}
        todo = [i for i in range(len(texts)) if i not in cached]
        for i, vector in cached.items():
            out[i] = vector
        pool = ThreadPoolExecutor(self._threads) if self._threads > 1 and len(todo) > 1 else None
        try:
            for start in range(0, len(todo), _CHUNK):
                chunk = todo[start:start + _CHUNK]
                run = pool.map if pool is not None else map
                out[chunk] = np.stack(list(run(self._run, (texts[i] for i in chunk))))
                if progress is not None:
                    progress(len(cached) + start + len(chunk))
        finally:
            if pool is not None:
                pool.shutdown()
        if self._cache is not None and todo:
            self._cache.put([texts[i] for i in todo], out[todo])
        return out

    def _run(self, text: str) -> np.ndarray:
        """One text per run: the quantised model scales its activations by what is in the batch, so
        a text encoded beside others (or beside padding) gets a slightly different vector than
        alone, as the router sees it. Alone it is also no slower (118 docs/s against 98 in batches
        of 32, measured)."""
        # lone surrogates (undecodable bytes passed through) are refused by the tokenizer: replaced
        clean = text[:_MAX_CHARS].encode("utf-8", "replace").decode("utf-8")
        encoding = self._tokenizer.encode(clean or " ")
        ids = np.array([encoding.ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        pooled = self._session.run(None, feed)[0][0].mean(axis=0)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)


@lru_cache(maxsize=4)
def shared_encoder(name: str) -> SentenceEncoder:
    """One encoder per process for classifying (the router and the web app load it once)."""
    return SentenceEncoder(name)


KNN_TEMPERATURE = 0.05  # a neighbour's vote is exp(cosine / this): the nearest count most


@dataclass(frozen=True, slots=True)
class Neighbours:
    """The training messages' vectors and labels: a message's ``k`` nearest (cosine) vote for
    their departments, the nearest most. A nearest-neighbour reader generalises to a resident's
    wording in a way a linear head on the same vectors does not (on the hard holdout it alone was
    right 83% of the time against 77% for the logistic regression). Each message votes once: a
    council's own rows, which count up to ten times in the linear models, would otherwise outvote
    closer messages (measured: after adding 1,000 of them the learning curve fell from 0.909 to
    0.877 with weighted votes; 0.906 with one vote each). Stored as 8-bit integers with one scale
    per row (4.9 MB for 12,261 messages instead of 19)."""

    vectors: np.ndarray  # rows x dimension, float32, unit length
    labels: np.ndarray  # row -> label index
    k: int

    def log_probs(self, vectors: np.ndarray, n_labels: int) -> np.ndarray:
        similarity = np.asarray(vectors, dtype=np.float32) @ self.vectors.T
        k = min(self.k, similarity.shape[1])
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        votes = np.zeros((len(vectors), n_labels))
        for row, (found, closeness) in enumerate(zip(nearest, np.take_along_axis(similarity, nearest, axis=1),
                                                     strict=True)):
            weight = np.exp((closeness - closeness.max()) / KNN_TEMPERATURE)
            np.add.at(votes[row], self.labels[found], weight)
        votes = votes / votes.sum(axis=1, keepdims=True)
        return np.log(votes + 1e-3)  # a department no neighbour named is unlikely, not impossible

    def arrays(self) -> dict[str, np.ndarray]:
        scale = np.maximum(np.abs(self.vectors).max(axis=1), 1e-12) / 127.0
        return {"memory": np.round(self.vectors / scale[:, None]).astype(np.int8),
                "memory_scale": scale.astype(np.float32), "memory_labels": self.labels.astype(np.int16)}

    @classmethod
    def from_arrays(cls, saved: dict[str, np.ndarray] | np.lib.npyio.NpzFile, k: int) -> Neighbours:
        vectors = saved["memory"].astype(np.float32) * saved["memory_scale"][:, None]
        return cls(vectors, saved["memory_labels"].astype(np.intp), k)


@dataclass
class EncoderHead:
    """The sentence encoder's reading of a message, blended with the TF-IDF model: logits =
    ``blend`` x log-probabilities of the TF-IDF model + (1 - ``blend``) x the encoder's, where the
    encoder's are a logistic regression on the vectors, mixed (``share``) with the vote of the
    nearest training messages when the model keeps them. Every message is encoded. (Letting
    messages the TF-IDF model was already sure of skip the encoder saved half the encoding and lost
    no accuracy, but it ranked the TF-IDF model's sure mistakes among the safest: on the hard
    holdout 51% could be routed 95% right against 63% with every message encoded.)"""

    encoder: str
    coef: np.ndarray  # labels x dimension, in the model's label order
    intercept: np.ndarray
    blend: float
    neighbours: Neighbours | None = None
    share: float = 0.0  # of the encoder's part, what the neighbours' vote has

    @property
    def voters(self) -> Neighbours | None:
        """The neighbours, when they have a share of the vote."""
        return self.neighbours if self.share > 0.0 else None

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        linear = np.asarray(vectors @ self.coef.T + self.intercept, dtype=np.float64)
        if self.voters is None:
            return linear
        voted = self.voters.log_probs(vectors, len(self.intercept))
        return (1.0 - self.share) * linear + self.share * voted

    def combine(self, linear_log_probs: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        return self.blend * linear_log_probs + (1.0 - self.blend) * self.logits(vectors)

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = self.voters.arrays() if self.voters is not None else {}
        np.savez(path, coef=self.coef, intercept=self.intercept, **arrays)

    def card(self) -> dict[str, object]:
        card: dict[str, object] = {"name": self.encoder, "blend": round(self.blend, 3),
                                   "file": "encoder-head.npz"}
        if self.voters is not None:
            card["neighbours"] = {"k": self.voters.k, "share": round(self.share, 3),
                                  "n": len(self.voters.labels)}
        return card

    @classmethod
    def load(cls, model_dir: Path, card: dict[str, object]) -> EncoderHead:
        found = card.get("neighbours")
        with np.load(model_dir / str(card.get("file", "encoder-head.npz"))) as saved:
            coef, intercept = saved["coef"], saved["intercept"]
            neighbours = Neighbours.from_arrays(saved, int(found["k"])) if isinstance(found, dict) else None
        share = float(found["share"]) if isinstance(found, dict) else 0.0
        return cls(str(card["name"]), coef, intercept, float(card["blend"]),  # type: ignore[arg-type]
                   neighbours, share)


def blended_probs(head: EncoderHead, linear_probs: np.ndarray, vectors: np.ndarray,
                  temperature: float = 1.0) -> np.ndarray:
    """Probabilities after the blend of the TF-IDF model's (``linear_probs``) with the head on
    the texts' ``vectors``, scaled by the calibration ``temperature``."""
    blended = head.combine(np.log(np.clip(linear_probs, 1e-12, 1.0)), vectors) / temperature
    shifted = np.exp(blended - blended.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


class _VectorCache:
    """Vectors by (encoder, text digest) in one SQLite file: the second training on a corpus
    encodes only what changed."""

    def __init__(self, path: Path, encoder: str, dimension: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (encoder TEXT, digest BLOB, vector BLOB, "
                         "PRIMARY KEY (encoder, digest))")
        self._encoder, self._dimension = encoder, dimension

    @staticmethod
    def _digest(text: str) -> bytes:
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:16]

    def get(self, texts: Sequence[str]) -> dict[int, np.ndarray]:
        found: dict[int, np.ndarray] = {}
        digests = [self._digest(t) for t in texts]
        wanted: dict[bytes, list[int]] = {}
        for i, d in enumerate(digests):
            wanted.setdefault(d, []).append(i)
        keys = list(wanted)
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for digest, blob in self._db.execute(
                    f"SELECT digest, vector FROM vectors WHERE encoder = ? AND digest IN ({marks})",  # noqa: S608
                    [self._encoder, *chunk]):
                vector = np.frombuffer(blob, dtype=np.float32)
                if vector.shape == (self._dimension,):
                    for i in wanted[bytes(digest)]:
                        found[i] = vector
        return found

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                                 [(self._encoder, self._digest(t), v.astype(np.float32).tobytes())
                                  for t, v in zip(texts, vectors, strict=True)])
