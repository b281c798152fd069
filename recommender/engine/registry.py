"""Model names as stored with a fit run, and rebuilding a model from a stored name and parameters."""

from __future__ import annotations

from typing import Any

from .base import Recommender
from .content import ContentModel
from .factors import ALS, PureSVD
from .hybrid import Hybrid
from .linear import EASE, EDLAE
from .neighbours import ItemKNN, Popularity, RP3beta

MODEL_CLASSES: dict[str, type[Recommender]] = {
    cls.name: cls for cls in (Popularity, ItemKNN, RP3beta, EASE, EDLAE, ALS, PureSVD, ContentModel, Hybrid)
}


def build_model(name: str, params: dict[str, Any], *, item_texts: list[str] | None = None) -> Recommender:
    """An unfitted model from its registered name and ``params`` (as a model's ``params`` returned them).

    The content model needs the item texts, which are data rather than parameters; a hybrid's parameters nest its
    components' names, parameters and weights.
    """
    if name == Hybrid.name:
        components = [(build_model(c["model"], c["params"], item_texts=item_texts), float(c["weight"]))
                      for c in params["components"]]
        return Hybrid(components, normalise=params.get("normalise", "zscore"))
    if name == ContentModel.name:
        if item_texts is None:
            raise ValueError("the content model needs item_texts")
        kwargs = dict(params)
        if "ngram_range" in kwargs:
            kwargs["ngram_range"] = tuple(kwargs["ngram_range"])
        return ContentModel(item_texts, **kwargs)
    try:
        cls = MODEL_CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_CLASSES)}") from None
    return cls(**params)
