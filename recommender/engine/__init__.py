"""The numerical core of the recommender: models, holdout splits, metrics, model selection and ranking.

Pure NumPy, SciPy and scikit-learn, with no Django: the nightly job builds a users x items CSR matrix of
implicit-feedback weights per tenant, calls :func:`select_model` on a holdout split, refits the winner on all
data, and stores :func:`top_n` and ``similar_items`` for serving. See ``bench/recsys_movielens.py`` for the same
path run on a public data set.
"""

from .base import NotFittedError, Recommender
from .content import ContentModel
from .factors import ALS, PureSVD
from .hybrid import Hybrid
from .linear import EASE, EDLAE
from .metrics import coverage_at_k, evaluate, ndcg_at_k, popularity_bias, recall_at_k
from .neighbours import ItemKNN, Popularity, RP3beta
from .ranking import top_n
from .registry import MODEL_CLASSES, build_model
from .selection import Selection, select_model
from .split import split_by_time, split_per_user_random

__all__ = [
    "ALS",
    "EASE",
    "EDLAE",
    "MODEL_CLASSES",
    "ContentModel",
    "Hybrid",
    "ItemKNN",
    "NotFittedError",
    "Popularity",
    "PureSVD",
    "RP3beta",
    "Recommender",
    "Selection",
    "build_model",
    "coverage_at_k",
    "evaluate",
    "ndcg_at_k",
    "popularity_bias",
    "recall_at_k",
    "select_model",
    "split_by_time",
    "split_per_user_random",
    "top_n",
]
