"""The two-stage recommender in Python: the exported `recommend` signature, run in memory."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Optional, Union

import numpy as np
import tensorflow as tf

from tfrec.ranking import examples, requests


def combined_score(outputs: Mapping, head_weights: Mapping[str, float]) -> np.ndarray:
    """The ranking score of each row: weighted sum of head probabilities.

    A binary head contributes sigmoid(logit); a regression head (examples.REGRESSION_HEADS)
    its raw prediction. Offline evaluation calls this too, so it ranks exactly as served.

    Args:
        outputs: dict head -> logits or predictions [batch] or [batch, 1].
        head_weights: dict head -> float. Every head of `outputs` must have a weight.

    Returns:
        float64 array [batch].

    Example:
        >>> combined_score({"view": np.array([[0.0]])}, {"view": 2.0})
        array([1.])
    """
    missing = sorted(set(outputs) - set(head_weights))
    if missing:
        raise ValueError(f"`head_weights` must weigh every head, missing {missing}")
    total: Union[float, np.ndarray] = 0.0
    for head in sorted(outputs):
        value = np.asarray(outputs[head], np.float64).reshape(-1)
        if head not in examples.REGRESSION_HEADS:
            value = 1.0 / (1.0 + np.exp(-value))
        total = total + float(head_weights[head]) * value
    return np.asarray(total, np.float64)


class Recommender:
    """Answers "what should this user see now?" with the exported two-stage pipeline.

    A thin wrapper over a `tfrec.exporting.signatures.ServingModule` held in memory (passed in
    by `tfrec.artifact`, so ranking never imports the export floor above it): the same
    graph TF Serving runs (retrieve top N with the query tower, the item vectors and the
    repeat prior; rank with the ranker; blend; drop recently purchased, unavailable and
    over-represented items; top k; explain each by the recent events closest to it), so the
    Python answers are the served answers.

    Unavailable items (`exclude`) go to the module's in-memory `recommend_excluding`, which
    drops them before the category cap like any excluded item; the served signatures have no
    such input, because TF Serving requires every input of a signature in every request.

    Args:
        module: ServingModule with a ranker. Runs requests without a query text.
        text_module: ServingModule or None. The same with a tokenizer (`query_text` input);
            None: requests with a query text are refused.

    Example:
        >>> rec = tfrec.load("runs/demo")
        >>> rec.recommend("u1", [("sku-9", "view")], k=5)[0].keys()
        dict_keys(['item_id', 'score', 'ranker_score', 'retrieval_score', 'explanation'])
    """

    def __init__(
        self,
        module: tf.Module,
        text_module: Optional[tf.Module] = None,
    ) -> None:
        for name, value, text in (("module", module, False), ("text_module", text_module, True)):
            if value is None and text:
                continue
            if value is None or getattr(value, "ranker", None) is None:
                raise ValueError(
                    f"`{name}` must be a ServingModule with a ranker, received "
                    f"{type(value).__name__}"
                )
            if (value.tokenizer is not None) != text:
                raise ValueError(
                    f"`{name}` must be a ServingModule {'with' if text else 'without'} a "
                    f"tokenizer, received one {'without' if text else 'with'}"
                )
        self.module = module
        self.text_module = text_module

    def recommend(
        self,
        user_id: str,
        recent_events: Sequence = (),
        k: int = 10,
        query_text: Optional[str] = None,
        exclude: Iterable[str] = (),
        now: Union[None, int, float, datetime.datetime] = None,
    ) -> list:
        """The top-k recommendations of one request.

        Args:
            user_id: str. The user (unknown users get the OOV embedding).
            recent_events: list of (item_id, event_type), most recent first. The towers see
                the first `max_history`; exclusions and explanations use all of them.
            k: int. Items to return at most. Defaults to 10.
            query_text: str or None. A search query (runs `text_module`); "" is no query.
            exclude: iterable of str. Item ids that must not be returned (e.g. out of stock).
            now: unix seconds, datetime or None (current time). Sets hour and weekday features.

        Returns:
            list [<= k] of dicts {item_id, score, ranker_score, retrieval_score, explanation},
            best first; `score` is the final (blended) score, `ranker_score` the weighted sum
            of head probabilities; explanation is a list of {item_id, event_type, position,
            weight}.
        """
        if not isinstance(user_id, str):
            raise ValueError(f"`user_id` must be a str, received {user_id!r}")
        if isinstance(exclude, str):
            raise ValueError(f"`exclude` must be a list of item ids, received the str {exclude!r}")
        module = self.module
        if query_text:
            if self.text_module is None:
                raise ValueError(
                    "`query_text` needs a Recommender built with a `text_module`, "
                    f"received {query_text!r} without one"
                )
            module = self.text_module
        inputs = requests.build(user_id, recent_events, now=now, k=k, query_text=query_text or None)
        excluded = [str(i) for i in exclude]
        if excluded:
            inputs["exclude_item_ids"] = np.array([excluded], object)
            call = module.recommend_excluding
        else:
            call = module.recommend
        out = call(**{name: _tensor(v) for name, v in inputs.items()})
        return response_rows({name: v.numpy()[0] for name, v in out.items()})


def _tensor(value: np.ndarray) -> tf.Tensor:
    # An empty object array has no dtype to infer: strings are strings whatever their size.
    return tf.constant(value, tf.string if value.dtype == object else None)


def _text(value: Union[bytes, str]) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def response_rows(out: dict) -> list:
    """One row of `recommend`'s outputs (batch dimension removed) as `Recommender.recommend`
    returns it: the shown items, best first, with their explanations."""
    shown = []
    for slot, item in enumerate(out["item_ids"]):
        if not item:  # "" fills the slots nothing was left for
            continue
        explanation = [
            {
                "item_id": _text(out["explanation_item_ids"][slot, j]),
                "event_type": _text(out["explanation_event_types"][slot, j]),
                "position": int(position),
                "weight": float(out["explanation_weights"][slot, j]),
            }
            for j, position in enumerate(out["explanation_positions"][slot])
            if position >= 0
        ]
        shown.append(
            {
                "item_id": _text(item),
                "score": float(out["scores"][slot]),
                "ranker_score": float(out["ranker_scores"][slot]),
                "retrieval_score": float(out["retrieval_scores"][slot]),
                "explanation": explanation,
            }
        )
    return shown
