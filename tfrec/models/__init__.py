"""Towers, the two-tower retrieval model and builders.py (the only reader of config objects)."""

from tfrec.models import builders, candidate_tower, query_tower, retrieval

__all__ = ["builders", "candidate_tower", "query_tower", "retrieval"]
