"""Tuning every baseline the same way: grid search on the validation queries, by NDCG@10.

For each baseline and each point of its grid, the baseline is fitted on the training window and
scores the validation queries (`prepared.validation`) under `protocol.evaluate`, with
`eval.exclude_seen` applied exactly as on test and the catalog as known at the validation start.
The point with the best validation NDCG@10 wins (ties: the first point in grid order). With
`eval.refit_baselines` (the default) the winner is fitted again on the training and validation
windows before it scores the test queries: tfrec's ranker, repeat prior and blend learn on the
validation window, so the baselines see it too; otherwise the model fitted on training scores
them. Grids come
from `DEFAULT_GRIDS`, each parameter replaceable through the config key
`eval.baseline_grids.<baseline>.<parameter>` (a list of values). The hybrid mixes the tuned buy
again and item-kNN, so only its weight is searched. The TF-IDF baseline reads each catalog
item's text as the item table has it (title, description, category: `schema.item_text`), which
the loaders build from what was known before the validation start.

Cost: on UCI Online Retail (3,645 items, 260k training rows, 1,864 validation queries) the
default grids take about one minute of CPU on 2 cores, ALS and EASE most of it.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

from tfrec import errors
from tfrec.data import schema
from tfrec.evaluation import protocol
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
)

METRIC = "ndcg@10"
DEFAULT_GRIDS: dict[str, dict[str, tuple]] = {
    "most_popular": {},
    "buy_again": {"decay": (0.5, 0.8, 0.9, 0.99, 1.0)},
    "item_knn": {"neighbors": (20, 50, 200), "weighting": ("cosine", "bm25")},
    "session_knn": {"neighbors": (20, 50, 200)},
    "ease": {"l2": (50.0, 200.0, 500.0, 1000.0)},
    "hybrid": {"weight": (0.25, 0.5, 0.75, 0.9, 0.95, 0.99)},
    "als": {"factors": (64, 128), "regularization": (0.01, 1.0), "alpha": (1.0, 3.0)},
    "tfidf": {"sublinear_tf": (False, True), "min_df": (1, 2)},
}
NAMES = tuple(DEFAULT_GRIDS)


@dataclasses.dataclass
class TunedBaseline:
    """A baseline tuned on validation, ready to score the test queries.

    Args:
        name: str. Baseline name, a key of DEFAULT_GRIDS.
        score_fn: callable. Protocol score function of the test queries (`prepared.test` order).
        params: dict. The chosen grid point (the hybrid also lists its components' parameters
            as `buy_again.decay`, `item_knn.neighbors`, ...).
        metrics: dict. Validation metrics (`all` segment) of the chosen point.
        validation: list of dict. Per grid point, in grid order: `params` and `metrics`.
        seconds: float. Wall time of the whole search, fitting and validation scoring included.
    """

    name: str
    score_fn: scoring.ScoreFn
    params: dict[str, Any]
    metrics: dict[str, float]
    validation: list[dict[str, Any]]
    seconds: float


def _build(name: str, params: Mapping[str, Any], components: Mapping[str, dict]):
    if name == "buy_again":
        return buy_again.BuyAgain(**params)
    if name == "item_knn":
        return item_knn.ItemKNN(**params)
    if name == "session_knn":
        return session_knn.SessionKNN(**params)
    if name == "ease":
        return ease.EASE(**params)
    if name == "als":
        return als.ALSBaseline(**params)
    if name == "tfidf":
        return tfidf.TfidfBaseline(**params)
    if name == "hybrid":
        return hybrid.Hybrid(
            buy_again.BuyAgain(**components.get("buy_again", {})),
            item_knn.ItemKNN(**components.get("item_knn", {})),
            **params,
        )
    return None  # most_popular: nothing to set


def _fit_and_score(name: str, model, window: inputs.Window, texts: Optional[np.ndarray] = None):
    """Fits `model` and returns `queries -> score_fn`."""
    if name == "tfidf":
        if texts is None:
            raise ValueError("the `tfidf` baseline needs `texts`, one per catalog item")
        return model.fit(window, texts).scorer
    if name == "most_popular":
        pop = most_popular.MostPopular(window.popularity())
        return pop.scorer
    if name == "als":
        return model.fit_window(window).query_scorer
    return model.fit(window).scorer


def resolve_grids(overrides: Mapping[str, Any]) -> dict[str, dict[str, tuple]]:
    """DEFAULT_GRIDS with `eval.baseline_grids` applied, every value checked.

    Args:
        overrides: mapping. Baseline name -> {parameter: list of values}.

    Raises:
        errors.ConfigError: naming the `eval.baseline_grids...` key of an unknown baseline or
            parameter, a value that is not a non-empty list, or a value the baseline rejects.
    """
    if not isinstance(overrides, Mapping):
        raise errors.ConfigError(
            f"`eval.baseline_grids` must be a mapping, received {type(overrides).__name__}"
        )
    grids = {name: dict(grid) for name, grid in DEFAULT_GRIDS.items()}
    for name, grid in overrides.items():
        key = f"eval.baseline_grids.{name}"
        if name not in grids:
            raise errors.ConfigError(f"`{key}`: unknown baseline; expected one of {list(NAMES)}")
        if not isinstance(grid, Mapping):
            raise errors.ConfigError(
                f"`{key}` must map parameters to lists of values, received {grid!r}"
            )
        for param, values in grid.items():
            if param not in DEFAULT_GRIDS[name]:
                raise errors.ConfigError(
                    f"`{key}.{param}`: unknown parameter; expected one of "
                    f"{list(DEFAULT_GRIDS[name])}"
                )
            if not isinstance(values, (list, tuple)) or not values:
                raise errors.ConfigError(
                    f"`{key}.{param}` must be a non-empty list of values, received {values!r}"
                )
            for value in values:
                try:
                    _build(name, {param: value}, {})
                except (TypeError, ValueError) as e:
                    raise errors.ConfigError(
                        f"`{key}.{param}` holds a bad value {value!r}: {e}"
                    ) from e
            grids[name][param] = tuple(values)
    return grids


def _points(grid: Mapping[str, tuple]) -> list[dict[str, Any]]:
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def tune(
    name: str,
    grid: Mapping[str, tuple],
    window: inputs.Window,
    validation: inputs.Queries,
    test: inputs.Queries,
    relevant: Sequence[np.ndarray],
    exclude,
    ks: Sequence[int],
    components: Optional[Mapping[str, dict]] = None,
    progress: bool = False,
    refit: Optional[tuple[inputs.Window, inputs.Queries]] = None,
    available: Optional[np.ndarray] = None,
    texts: Optional[np.ndarray] = None,
) -> TunedBaseline:
    """Grid search of one baseline on validation; see the module docstring.

    Args:
        name: str. A key of DEFAULT_GRIDS.
        grid: mapping. Parameter -> values.
        window: inputs.Window. The training window.
        validation: inputs.Queries. Validation queries.
        test: inputs.Queries. Test queries, scored by the winner.
        relevant: list of int arrays. Relevant catalog indices per validation query.
        exclude: list of int arrays or None. Items excluded per validation query.
        ks: sequence of int. Cut-offs reported in `validation` (10 is always added).
        components: mapping. For `hybrid`: tuned `buy_again` and `item_knn` parameters.
        progress: bool. Show a tqdm bar over the grid points.
        refit: (Window, Queries) or None. A later fitting window and the test queries built
            against it: the winner is fitted there before scoring them. None: the model fitted
            on `window` scores `test`.
        available: bool array [num_items] or None. The catalog at the validation start.
        texts: str array [num_items] or None. Each catalog item's text (`tfidf` only).

    Returns:
        TunedBaseline.
    """
    import tqdm

    t0 = time.perf_counter()
    ks = tuple(sorted(set(ks) | {10}))
    tried, best, best_value, best_scorer = [], {}, -np.inf, None
    for params in tqdm.tqdm(_points(grid), desc=f"tune {name}", disable=not progress):
        scorer_of = _fit_and_score(name, _build(name, params, components or {}), window, texts)
        result = protocol.evaluate(
            scorer_of(validation),
            relevant,
            window.num_items,
            ks=ks,
            exclude=exclude,
            available=available,
        )
        tried.append({"params": params, "metrics": result["all"]})
        value = result["all"][METRIC]
        if best_scorer is None or value > best_value:  # strict: ties keep the earlier point
            best, best_value, best_scorer, best_metrics = params, value, scorer_of, result["all"]
    chosen = dict(best)
    if name == "hybrid":
        for component, params in (components or {}).items():
            chosen.update({f"{component}.{k}": v for k, v in params.items()})
    assert best_scorer is not None  # the grid has at least one point
    if refit is None:
        score_fn = best_scorer(test)
    else:
        refit_window, refit_test = refit
        model = _build(name, best, components or {})
        score_fn = _fit_and_score(name, model, refit_window, texts)(refit_test)
    seconds = time.perf_counter() - t0
    return TunedBaseline(name, score_fn, chosen, best_metrics, tried, seconds)


def tuned_scorers(prepared, config, names: Sequence[str], progress: bool = True) -> dict:
    """Tunes the named baselines on validation and returns their test score functions.

    Args:
        prepared: tfrec.data.prepared.PreparedData.
        config: tfrec.config.Config. Reads `eval.baseline_grids`, `eval.exclude_seen` and
            `eval.ks`.
        names: sequence of str. Baselines to tune, from NAMES.
        progress: bool. Show progress bars and print each chosen grid point. Defaults to True.

    Returns:
        dict name -> TunedBaseline, in the order of `names`.

    Example:
        >>> tuned = tuned_scorers(prepared, config, ["buy_again", "item_knn", "hybrid"])
        >>> protocol.evaluate(tuned["hybrid"].score_fn, test_relevant, num_items)
    """
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f"`names` must be drawn from {list(NAMES)}, received {unknown}")
    grids = resolve_grids(config.eval.baseline_grids)
    window, validation = inputs.from_prepared(prepared, prepared.validation)
    _, test = inputs.from_prepared(prepared, prepared.test)
    refit = None
    if config.eval.refit_baselines:
        refit = inputs.from_prepared(
            prepared, prepared.test, window_end=int(prepared.split.test_start)
        )
    available = prepared.available_at(int(prepared.split.validation_start))
    relevant = [prepared.catalog_index(r) for r in prepared.validation.relevant]
    exclude = None
    if config.eval.exclude_seen:
        exclude = [prepared.catalog_index(s) for s in prepared.validation.seen]
    texts = catalog_texts(prepared) if "tfidf" in names else None

    def run(name, components=None):
        return tune(
            name,
            grids[name],
            window,
            validation,
            test,
            relevant,
            exclude,
            config.eval.ks,
            components=components,
            progress=progress,
            refit=refit,
            available=available,
            texts=texts,
        )

    done: dict[str, TunedBaseline] = {}
    # The hybrid mixes the tuned components: they go first, returned only when asked for.
    order = [n for n in ("buy_again", "item_knn") if n in names or "hybrid" in names]
    order += [n for n in names if n not in order]
    for name in order:
        if name == "hybrid":
            components = {c: done[c].params for c in ("buy_again", "item_knn")}
            done[name] = run(name, components)
        else:
            done[name] = run(name)
        if progress:
            t = done[name]
            print(
                f"[baselines] {name}: {t.params} (validation {METRIC} {t.metrics[METRIC]:.4f}, "
                f"{len(t.validation)} points, {t.seconds:.1f} s)"
            )
    return {name: done[name] for name in names}


def catalog_texts(prepared) -> np.ndarray:
    """Each catalog item's text (`schema.item_text`), in catalog order ("" if unlisted).

    Args:
        prepared: tfrec.data.prepared.PreparedData.

    Returns:
        object array [num_items] of str.
    """
    items = prepared.dataset.items
    texts = np.full(len(prepared.table.item_ids), "", dtype=object)
    rows = prepared.catalog_index(items["item_id"].astype(str).to_numpy(dtype=object))
    known = rows >= 0
    texts[rows[known]] = schema.item_text(items)[known]
    return texts
