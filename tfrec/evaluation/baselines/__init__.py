"""Classical baselines as protocol score functions, and their tuning on the validation window.

Each baseline is fitted on the training window (`inputs.Window`) and scores queries
(`inputs.Queries`: a query's training profile plus its recent events) through `scorer`, which
returns a `protocol.evaluate` score function. `tuning.tuned_scorers` picks every baseline's
hyperparameters on the validation queries and returns test score functions.
"""

from tfrec.evaluation.baselines import (
    als,
    buy_again,
    ease,
    hybrid,
    inputs,
    item_knn,
    most_popular,
    scoring,
    session_knn,
    tfidf,
    tuning,
)
from tfrec.evaluation.baselines.als import ALSBaseline
from tfrec.evaluation.baselines.buy_again import BuyAgain
from tfrec.evaluation.baselines.ease import EASE
from tfrec.evaluation.baselines.hybrid import Hybrid
from tfrec.evaluation.baselines.inputs import Queries, Window
from tfrec.evaluation.baselines.item_knn import ItemKNN
from tfrec.evaluation.baselines.most_popular import MostPopular
from tfrec.evaluation.baselines.session_knn import SessionKNN
from tfrec.evaluation.baselines.tfidf import TfidfBaseline
from tfrec.evaluation.baselines.tuning import TunedBaseline, tuned_scorers

ScoreFn = scoring.ScoreFn

__all__ = [
    "ALSBaseline",
    "BuyAgain",
    "EASE",
    "Hybrid",
    "ItemKNN",
    "MostPopular",
    "Queries",
    "ScoreFn",
    "SessionKNN",
    "TfidfBaseline",
    "TunedBaseline",
    "Window",
    "als",
    "buy_again",
    "ease",
    "hybrid",
    "inputs",
    "item_knn",
    "most_popular",
    "scoring",
    "session_knn",
    "tfidf",
    "tuned_scorers",
    "tuning",
]
