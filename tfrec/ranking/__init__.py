"""Second stage of the recommender: DCN-v2 ranking, examples, metrics, rules, explanations."""

from tfrec.ranking.builder import build_ranker, resolve_heads
from tfrec.ranking.examples import (
    REGRESSION_HEADS,
    LabeledPairs,
    RankingCatalog,
    RankingQueries,
    build_ranking_examples,
)
from tfrec.ranking.explain import Explainer, Reason
from tfrec.ranking.model import RankingModel, binary_task, make_task, regression_task
from tfrec.ranking.network import CUSTOM_OBJECTS, RANKING_FEATURES, build_ranking_network
from tfrec.ranking.recommender import Recommender
from tfrec.ranking.rules import apply_rules, excluded_items
from tfrec.ranking.similarity import HistorySimilarity

__all__ = [
    "CUSTOM_OBJECTS",
    "RANKING_FEATURES",
    "REGRESSION_HEADS",
    "Explainer",
    "HistorySimilarity",
    "LabeledPairs",
    "RankingCatalog",
    "RankingModel",
    "RankingQueries",
    "Reason",
    "Recommender",
    "apply_rules",
    "binary_task",
    "build_ranker",
    "build_ranking_examples",
    "build_ranking_network",
    "excluded_items",
    "make_task",
    "regression_task",
    "resolve_heads",
]
