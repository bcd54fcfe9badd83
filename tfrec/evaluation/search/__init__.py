"""Search quality: a query-to-item benchmark built from reviews, its scorers and their fusion."""

from tfrec.evaluation.search import benchmark, dense, fusion, lexical
from tfrec.evaluation.search.benchmark import SearchSet, build

__all__ = ["SearchSet", "benchmark", "build", "dense", "fusion", "lexical"]
