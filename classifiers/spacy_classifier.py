"""``SpacyClassifier``: the department textcat plus rules, behind the ``Classifier`` port."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import spacy
from spacy.attrs import IS_ALPHA, LOWER
from spacy.language import Language

from classifiers.architectures import LinearScorer  # importing it registers the model architectures
from classifiers.base import Prediction
from classifiers.encoder import EncoderHead, blended_probs, shared_encoder
from classifiers.metrics import softmax_with_temperature
from classifiers.registry import check_model_dir
from classifiers.rules import RuleSet, find_entities, load_rules
from classifiers.taxonomy import Taxonomy, load_taxonomy
from classifiers.text import model_text, prepare
from classifiers.training import FLAG
from schemas.errors import OperatorError
from schemas.inbound import InboundMessage

log = logging.getLogger(__name__)
_EXPLAIN_CANDIDATES = 12
_EXPLAIN_WORDS = 3


class SpacyClassifier:
    """Routes an enquiry with a trained spaCy textcat; type, flags and entities come from rules
    (and a type textcat when the model has one).

    ``scores`` are temperature-scaled probabilities over the taxonomy's departments; the
    threshold is the predicted department's, from the taxonomy. A department the model knows
    but the taxonomy lacks is never named: its probability is left out, not shared among the
    others, so such enquiries score lower and tend to go to triage. With ``explain`` the
    explanation names the words whose removal lowers the score most (occlusion), which costs
    one extra pass over a dozen variants of the text. A model trained with a sentence encoder
    blends it in; ``encoder=False`` leaves it out (about ten times faster) and uses the
    temperature and thresholds training fitted for the TF-IDF model alone (the card's
    ``without_encoder``), so what is routed stays as right as it was measured to be.
    """

    def __init__(self, model_dir: Path, *, taxonomy: Taxonomy | None = None, rules: RuleSet | None = None,
                 explain: bool = True, encoder: bool = True) -> None:
        self.card: dict[str, Any] = check_model_dir(model_dir)
        try:
            self.nlp: Language = spacy.load(model_dir / "department")
            type_dir = model_dir / "enquiry_type"
            self.type_nlp: Language | None = spacy.load(type_dir) if type_dir.is_dir() else None
            guard_dir = model_dir / "safeguarding"
            self.guard_nlp: Language | None = spacy.load(guard_dir) if guard_dir.is_dir() else None
        except (OSError, ValueError) as exc:
            raise OperatorError(f"{model_dir} is not a usable Frontdoor model ({exc}): train one with "
                                "'frontdoor train' or pick another with 'frontdoor models use'") from None
        self.model_dir = model_dir
        self.version: str = str(self.card["version"])
        self.labels: list[str] = list(self.card["labels"])
        self.type_labels: list[str] = list(self.card.get("type_labels", []))
        self.temperature = float(self.card.get("temperature", 1.0))
        self.guard_threshold = float(self.card.get("safeguarding_threshold") or 0.5)
        # thresholds the training chose on held-out writing, where that department was overconfident
        self.card_thresholds: dict[str, float] = {
            str(k): float(v) for k, v in (self.card.get("thresholds") or {}).items()}
        self.taxonomy = taxonomy or load_taxonomy()
        self.rules = rules or load_rules()
        self.explain = explain
        self._departments = list(self.taxonomy.ids)
        self._known = frozenset(self._departments)
        self._thresholds: dict[str, float] = {}
        # the model's departments the router may name, in the model's order
        self._routable = [lab for lab in self.labels if lab in self.taxonomy] or self._departments
        unknown = [lab for lab in self.labels if lab not in self.taxonomy]
        if unknown:
            log.warning("model %s knows departments the taxonomy %s lacks (%s): they are never predicted and "
                        "their enquiries tend to go to triage; retrain with 'frontdoor train'",
                        self.version, self.taxonomy.source, ", ".join(unknown))
        self._stop_words = self.nlp.Defaults.stop_words
        # the fitted TF-IDF models scored in NumPy on one shared tokenisation (None: an older
        # architecture, scored through its spaCy pipeline)
        self._scorer = LinearScorer.of(self.nlp)
        self._type_scorer = LinearScorer.of(self.type_nlp) if self.type_nlp is not None else None
        self._guard_scorer = LinearScorer.of(self.guard_nlp) if self.guard_nlp is not None else None
        if self._scorer is not None:
            self._columns = [self._scorer.labels.index(lab) for lab in self.labels]
        # the sentence encoder blended with the TF-IDF model (classifiers.encoder)
        head_card = self.card.get("encoder")
        self._head: EncoderHead | None = None
        if head_card and self._scorer is not None and encoder:
            try:
                self._head = EncoderHead.load(model_dir, head_card)
                shared_encoder(self._head.encoder)  # loaded now, not on the first message
            except (OSError, KeyError, ValueError) as exc:
                raise OperatorError(f"{model_dir}: its encoder head is unusable ({exc}): retrain with "
                                    "'frontdoor train' or pick another with 'frontdoor models use'") from None
        # the sentence encoder this classifier blends in (None: the TF-IDF model alone)
        self.encoder_name: str | None = self._head.encoder if self._head is not None else None
        if head_card and not encoder:
            fast = self.card.get("without_encoder")
            if isinstance(fast, dict):
                self.temperature = float(fast.get("temperature", 1.0))
                self.card_thresholds = {str(k): float(v) for k, v in (fast.get("thresholds") or {}).items()}
            else:
                log.warning("model %s was calibrated with its sentence encoder only: without it, its "
                            "thresholds may route too much; retrain with 'frontdoor train'", self.version)

    def classify(self, message: InboundMessage) -> Prediction:
        body = message.body_trimmed if message.body_trimmed is not None else message.body_text
        return self._predict(prepare(message.subject, body))

    def classify_text(self, text: str) -> Prediction:
        return self._predict(prepare(None, text))

    def department_scores(self, texts: list[str]) -> np.ndarray:
        """Calibrated probabilities (rows over ``self.labels``) for prepared texts, in one batch;
        labels the taxonomy lacks score 0, as they do in a prediction."""
        if self._scorer is not None:
            lowered = [model_text(t) for t in texts]
            rows = [self._department_logits(self.nlp.make_doc(t)) for t in lowered]
            probs = self._calibrated(np.array(rows, dtype="float64").reshape(len(texts), len(self.labels)),
                                     lowered)
        else:
            docs = self.nlp.pipe((model_text(t) for t in texts), batch_size=256)
            raw = np.array([[doc.cats.get(lab, 0.0) for lab in self.labels] for doc in docs], dtype=float)
            probs = softmax_with_temperature(raw.reshape(len(texts), len(self.labels)), self.temperature)
        return probs * np.array([lab in self.taxonomy for lab in self.labels], dtype=float)

    def _calibrated(self, logits: np.ndarray, lowered: list[str]) -> np.ndarray:
        """Temperature-scaled probabilities from the TF-IDF model's logits (rows: ``lowered``,
        the texts as ``model_text`` made them), the sentence encoder blended in if the model has one."""
        if self._head is None:
            return _softmax(logits / self.temperature)
        vectors = shared_encoder(self._head.encoder).encode(lowered)
        return blended_probs(self._head, _softmax(logits), vectors, self.temperature)

    def _department_logits(self, doc: Any) -> np.ndarray:
        assert self._scorer is not None  # noqa: S101 - called only when there is one
        return self._scorer.logits(doc)[self._columns]

    def threshold(self, department: str) -> float:
        """The confidence a prediction of ``department`` needs to be routed without a human: the
        taxonomy's threshold (the council's floor), raised to the model card's where training
        measured that this model needs more for what it routes to be right."""
        threshold = self._thresholds.get(department)
        if threshold is None:
            threshold = self._thresholds[department] = max(self.taxonomy.threshold(department),
                                                           self.card_thresholds.get(department, 0.0))
        return threshold

    def _predict(self, text: str) -> Prediction:
        if self._scorer is not None:
            lowered = model_text(text)
            doc = self.nlp.make_doc(lowered)
            probs = self._calibrated(self._department_logits(doc)[None, :], [lowered])[0]
        else:
            doc = self.nlp(model_text(text))
            raw = np.array([[doc.cats.get(lab, 0.0) for lab in self.labels]], dtype=float)
            probs = softmax_with_temperature(raw, self.temperature)[0]
        by_label = {lab: float(p) for lab, p in zip(self.labels, probs, strict=True) if lab in self._known}
        scores = {dept: round(by_label.get(dept, 0.0), 6) for dept in self._departments}
        best = max(self._routable, key=lambda dept: by_label.get(dept, 0.0))
        confidence = by_label.get(best, 0.0)
        threshold = self.threshold(best)
        also = tuple(d for d, p in sorted(by_label.items(), key=lambda kv: -kv[1])
                     if d != best and p >= self.taxonomy.also_threshold)
        kind, kind_reason = self._enquiry_type(text, doc)
        fired = self.flags(text, doc)
        reasons = [f"{best} {confidence:.2f}" + (f" below its threshold {threshold:.2f}: triage"
                                                  if confidence < threshold else "")]
        if self.explain and best in self.labels:
            reasons += self._top_words(doc, best)
        reasons.append(f"type {kind}: {kind_reason}")
        reasons += [f"flag {name}: {why}" for name, why in fired]
        return Prediction(
            department=best,
            confidence=round(confidence, 6),
            scores=scores,
            enquiry_type=kind,
            flags=tuple(name for name, _ in fired),
            entities=tuple(find_entities(text, self.rules)),
            model_version=self.version,
            explanation=tuple(reasons),
            threshold=threshold,
            also=also,
        )

    def flags(self, text: str, doc: Any = None) -> list[tuple[str, str]]:
        """Flags that fire, each with its reason: the rules, and the safeguarding model if any.
        ``doc``: the text already tokenised for the model (saves doing it again)."""
        fired = [(name, f"'{words}'") for name, words in self.rules.flags_for(text)]
        if self.guard_nlp is not None and not any(name == FLAG for name, _ in fired):
            score = self._cats(self.guard_nlp, self._guard_scorer, text, doc).get(FLAG, 0.0)
            if score >= self.guard_threshold:
                fired.append((FLAG, f"safeguarding model {score:.2f} (threshold {self.guard_threshold:.2f})"))
        return fired

    def _cats(self, nlp: Language, scorer: LinearScorer | None, text: str, doc: Any) -> dict[str, float]:
        """A secondary model's probabilities, on the shared tokenisation when it can be scored
        in NumPy (every pipeline here starts from the same blank English tokenizer)."""
        if scorer is None or doc is None:
            return dict(nlp(model_text(text)).cats)
        probs = _softmax(scorer.logits(doc)[None, :])[0]
        return {lab: float(p) for lab, p in zip(scorer.labels, probs, strict=True)}

    def _enquiry_type(self, text: str, doc: Any = None) -> tuple[str, str]:
        if not any(ch.isalnum() for ch in text):
            return "general", "no words to read (a photo only, or an empty message)"
        kind, words = self.rules.enquiry_type(text)
        if kind:
            return kind, f"rule matched '{words}'"
        if self.type_nlp is not None and self.type_labels:
            cats = self._cats(self.type_nlp, self._type_scorer, text, doc)
            best = max(self.type_labels, key=lambda lab: cats.get(lab, 0.0))
            return best, f"type model {cats.get(best, 0.0):.2f}"
        if self.rules.is_question(text):
            return self.rules.question_type, "reads as a question"
        return self.rules.fallback_type, "no rule matched"

    def _top_words(self, doc: Any, best: str) -> list[str]:
        """Occlusion: drop distinct content words and see how far the top score falls. A long
        text is first probed in groups of words, then word by word inside the two strongest.
        Ranked by the fall in log-odds, log(p / (1 - p)), which does not saturate near 1 (the
        fall in log-probability did: a 0.99998-sure prediction had no word worth naming)."""
        words: list[str] = []
        ids: dict[str, int] = {}
        seen: set[int] = set()
        strings = doc.vocab.strings
        for lower, alpha in doc.to_array([LOWER, IS_ALPHA]).tolist():  # no Token objects: cheaper
            if alpha and lower not in seen:
                seen.add(lower)
                word = strings[lower]
                if len(word) > 2 and word not in self._stop_words:
                    words.append(word)
                    ids[word] = lower
        if not words:
            return []
        column = self.labels.index(best)
        drops = self._drops if self._scorer is None else self._linear_drops
        if len(words) > _EXPLAIN_CANDIDATES:
            size = -(-len(words) // _EXPLAIN_CANDIDATES)
            groups = [words[i:i + size] for i in range(0, len(words), size)]
            group_drops = drops(doc, [set(g) for g in groups], column, ids)
            strongest = sorted(range(len(groups)), key=lambda i: -group_drops[i])[:2]
            words = [w for i in sorted(strongest) for w in groups[i]]
        word_drops = drops(doc, [{w} for w in words], column, ids)
        ranked = sorted(zip(words, word_drops, strict=True), key=lambda wd: -wd[1])
        return [f"word '{w}'" for w, d in ranked[:_EXPLAIN_WORDS] if d >= 0.01]

    def _linear_drops(self, doc: Any, removals: list[set[str]], column: int,
                      ids: dict[str, int]) -> list[float]:
        """The fall in the department's log-odds without each set of words, computed on
        the model's features (``LinearScorer.occlusion``) rather than by re-running the pipeline
        on edited copies of the text: an explanation then costs a fraction of a classification."""
        assert self._scorer is not None  # noqa: S101 - called only when there is one
        label = self._columns[column]
        scores = self._scorer.occlusion(doc, [set(), *({ids[w] for w in gone} for gone in removals)], label)
        return [float(scores[0] - value) for value in scores[1:]]

    def _drops(self, doc: Any, removals: list[set[str]], column: int, ids: dict[str, int]) -> list[float]:
        def log_odds(p: float) -> float:
            p = min(max(p, 1e-12), 1 - 1e-12)
            return float(np.log(p / (1 - p)))

        label = self.labels[column]
        base = log_odds(doc.cats.get(label, 0.0))
        variants = ["".join(t.text_with_ws for t in doc if t.lower_ not in gone) for gone in removals]
        return [base - log_odds(d.cats.get(label, 0.0)) for d in self.nlp.pipe(variants, batch_size=64)]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
