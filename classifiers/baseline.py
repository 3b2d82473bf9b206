"""The baseline the spaCy model must beat: TF-IDF features and logistic regression (scikit-learn)."""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from classifiers.text import model_text


def train_baseline(texts: Sequence[str], labels: Sequence[str], seed: int = 0) -> Pipeline:
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
        LogisticRegression(C=10.0, max_iter=2000, random_state=seed),
    )
    model.fit([model_text(t) for t in texts], list(labels))
    return model


def predict_baseline(model: Pipeline, texts: Sequence[str]) -> list[str]:
    return [str(p) for p in model.predict([model_text(t) for t in texts])]
