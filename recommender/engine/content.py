"""Content-based model over item texts: the only model that can place an item nobody has touched yet.

Items are TF-IDF vectors of character n-grams within words (``char_wb``) plus word unigrams. Character n-grams
need no tokenizer, so Chinese text, which has no spaces, matches on shared character pairs ("数据", "分析") the
way English matches on shared words and stems; the word unigrams add whole-word precision for spaced scripts.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from .base import Recommender
from .matrix import row_normalise

# Words of one character count too (scikit-learn's default drops them): "C", "R" and "Go" are course topics.
_WORD_PATTERN = r"(?u)\b\w+\b"


class ContentModel(Recommender):
    """Scores items by the cosine between their text vector and the user's profile (the weighted sum of the text
    vectors of the items the user interacted with).

    ``texts`` is one string per item column, in column order (title, description, tags and categories joined by
    the caller). ``ngram_range`` sets the character n-gram sizes; ``words`` adds word unigrams.
    """

    name = "content"

    def __init__(
        self,
        texts: list[str],
        *,
        ngram_range: tuple[int, int] = (1, 3),
        words: bool = True,
        max_features: int | None = 200_000,
    ) -> None:
        self.texts = list(texts)
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
        self.words = bool(words)
        self.max_features = max_features
        self._vectors: sp.csr_matrix | None = None

    @property
    def params(self) -> dict[str, Any]:
        return {"ngram_range": list(self.ngram_range), "words": self.words, "max_features": self.max_features}

    def clone(self) -> ContentModel:
        return ContentModel(self.texts, ngram_range=self.ngram_range, words=self.words,
                            max_features=self.max_features)

    @property
    def item_vectors(self) -> sp.csr_matrix:
        """Unit-length TF-IDF vectors, one row per item (computed once; they do not depend on interactions)."""
        if self._vectors is None:
            self._vectors = self._vectorise(self.texts)
        return self._vectors

    def _vectorise(self, texts: list[str]) -> sp.csr_matrix:
        texts = [t or "" for t in texts]
        if not any(t.strip() for t in texts):
            return sp.csr_matrix((len(texts), 1), dtype=np.float32)
        parts = [
            TfidfVectorizer(analyzer="char_wb", ngram_range=self.ngram_range, lowercase=True, sublinear_tf=True,
                            max_features=self.max_features, dtype=np.float32).fit_transform(texts)
        ]
        if self.words:
            words = TfidfVectorizer(analyzer="word", lowercase=True, sublinear_tf=True, token_pattern=_WORD_PATTERN,
                                    max_features=self.max_features, dtype=np.float32)
            with contextlib.suppress(ValueError):  # no word tokens at all (e.g. only punctuation)
                parts.append(words.fit_transform(texts))
        return row_normalise(sp.hstack(parts, format="csr", dtype=np.float32))

    def _fit(self, X: sp.csr_matrix) -> None:
        if len(self.texts) != X.shape[1]:
            raise ValueError(f"{len(self.texts)} texts for {X.shape[1]} items")
        self._vectors_T = self.item_vectors.T.tocsr()

    def profiles(self, users: np.ndarray) -> sp.csr_matrix:
        """Unit-length text profiles of ``users``: their interaction weights times the item vectors."""
        return row_normalise(sp.csr_matrix(self.user_rows(users) @ self.item_vectors))

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray((self.profiles(users) @ self._vectors_T).toarray(), dtype=np.float32)

    def item_scores(self, items: np.ndarray) -> np.ndarray:
        return np.asarray((self.item_vectors[np.asarray(items)] @ self._vectors_T).toarray(), dtype=np.float32)
