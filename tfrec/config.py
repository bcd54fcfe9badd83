"""Typed, frozen run configuration: YAML files plus dotted `--set key=value` overrides.

Over 400 lines on purpose: every setting of every command (data, model, training, evaluation,
ranking, serving, compression, bench) is one typed tree, read, merged and checked here, so that
no other module parses configuration and a bad value fails before any work starts.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import tempfile
import types
import typing
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from tfrec import errors


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Sizes of the generated catalog and logs (the embedded default dataset)."""

    num_items: int = 2000
    num_users: int = 1000
    num_events: int = 60000
    num_categories: int = 12
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class CsvConfig:
    """Column mapping for `dataset: csv` (source column name for each canonical field).

    An empty mapping value means the source has no such column.
    """

    interactions: str = ""  # CSV or Parquet file of interactions
    catalog: str = ""  # optional CSV or Parquet item catalog
    user_id: str = "user_id"
    item_id: str = "item_id"
    timestamp: str = "timestamp"
    event_type: str = ""
    value: str = ""
    quantity: str = ""
    price: str = ""
    title: str = "title"
    description: str = ""
    category: str = ""
    timestamp_format: str = ""  # strftime format; empty: unix seconds or ISO 8601


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """Temporal split. Each cut-off is an ISO date, or a fraction of the time range in (0, 1)."""

    validation_start: Union[str, float] = 0.8
    test_start: Union[str, float] = 0.9


@dataclasses.dataclass(frozen=True)
class DataConfig:
    dataset: str = "synthetic"  # synthetic | online-retail | movielens | amazon-reviews | csv
    path: Optional[str] = None  # file or folder of the source data
    synthetic: SyntheticConfig = SyntheticConfig()
    csv: CsvConfig = CsvConfig()
    split: SplitConfig = SplitConfig()
    max_history: int = 20  # recent events the query tower sees, most recent first
    text_length: int = 32  # WordPiece tokens per item text
    query_text_length: int = 16
    vocab_size: int = 3000  # WordPiece vocabulary learned from the catalog
    target_events: tuple = ()  # event types that become retrieval targets; empty: all
    query_text_rate: float = 0.0  # share of training examples given a search query
    # Cleaning: exact duplicate rows, prices <= 0 and times outside [min, max] are dropped and
    # counted, or refused with an error naming file, row and field when `strict`.
    strict: bool = False
    min_timestamp: str = "1990-01-01"  # ISO 8601, UTC
    max_timestamp: str = ""  # ISO 8601, UTC; empty: one day after now
    max_field_size: int = 65536  # most characters in one field of a text file


@dataclasses.dataclass(frozen=True)
class QueryStudentConfig:
    """A shallow student of the pretrained model's frozen part, for search queries in real time.

    Distilled before the towers train, on query-like text made from the training catalog and
    the preset's vocabulary (`tfrec.training.query_student`); then every query, in training and
    in serving, goes through it instead of the frozen layers. Modes frozen and finetune only.
    """

    layers: int = 0  # transformer layers; 0: no student, queries run the frozen part
    steps: int = 400
    batch_size: int = 64
    learning_rate: float = 2e-4


@dataclasses.dataclass(frozen=True)
class TextEncoderConfig:
    """The KerasNLP BERT over item and query text: from scratch, or a pretrained preset."""

    # scratch: a small BERT over the catalog's learned WordPiece vocabulary; frozen: the
    # preset's model and vocabulary, untrained (its pooled item vectors cached); finetune: the
    # same, with the top `trainable_layers` transformer layers trained.
    mode: str = "scratch"
    # Local preset directory for `BertBackbone.from_preset`, or "default": the model that
    # `tfrec text fetch-default` writes to the cache. Required by frozen and finetune.
    preset: Optional[str] = None
    trainable_layers: int = 1  # finetune: top transformer layers that train
    num_layers: int = 2
    num_heads: int = 2
    hidden_dim: int = 64
    intermediate_dim: int = 128
    dropout: float = 0.1
    query_student: QueryStudentConfig = dataclasses.field(default_factory=QueryStudentConfig)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    embedding_dim: int = 64  # output of both towers
    id_embedding_dim: int = 32
    use_item_ids: bool = True
    use_text: bool = True  # False gives the id-only two-tower baseline
    history_encoder: str = "attention"  # pooling | attention | gru
    text_encoder: TextEncoderConfig = TextEncoderConfig()
    temperature: float = 0.05
    logq_correction: bool = True
    remove_accidental_hits: bool = True
    num_hard_negatives: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    # Per replica: a step reads batch_size x replicas examples (over all workers of a
    # multi_worker run), and each replica's in-batch softmax scores `batch_size` candidates.
    batch_size: int = 256
    epochs: int = 5
    learning_rate: float = 2e-3
    precision: str = "auto"  # auto | float32 | mixed_float16 | mixed_bfloat16
    distribution: str = "auto"  # auto | none | mirrored | multi_worker (cluster in TF_CONFIG)
    early_stopping_patience: int = 2
    steps_per_epoch: Optional[int] = None  # None: one pass over the training examples
    seed: int = 0
    histogram_freq: int = 1


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    ks: tuple = (10, 50, 100)
    exclude_seen: bool = False  # drop items the user interacted with before from the ranking
    # Each tuned on the validation window (`baseline_grids`); `id_two_tower` is trained by
    # `tfrec train` with the same trainer as tfrec.
    baselines: tuple = (
        "most_popular",
        "buy_again",
        "item_knn",
        "session_knn",
        "ease",
        "als",
        "hybrid",
        "tfidf",
        "id_two_tower",
    )
    max_examples: Optional[int] = None  # cap on test examples (None: all)
    # Baseline -> {parameter: [values]} replacing grids searched on validation; defaults and
    # names in tfrec/evaluation/baselines/tuning.py (DEFAULT_GRIDS).
    baseline_grids: dict = dataclasses.field(default_factory=dict)
    # Fit each tuned baseline again on the training + validation windows before it scores the
    # test queries: tfrec's ranker, repeat prior and blend learn on the validation window.
    refit_baselines: bool = True


@dataclasses.dataclass(frozen=True)
class RankingConfig:
    """The DCN-v2 ranker that re-scores retrieved candidates (second stage)."""

    heads: tuple = ()  # event types with a head; empty: every event type in the data
    loss_weights: dict = dataclasses.field(default_factory=dict)  # head -> weight (default 1)
    # Per positive: hard negatives from the retrieval stage's own top candidates and random
    # ones over the catalog. Mostly hard: the ranker's job is to re-order retrieved lists; a
    # few random ones keep items far from the user scored low.
    hard_negatives: int = 8
    random_negatives: int = 1
    # Where training examples come from. "validation": the validation window, which the
    # retrieval towers never trained on, so their `retrieval_score` input is as trustworthy as
    # when served (its last `holdout` share of time picks the best epoch). "train": the
    # training window (more data, but the towers fit it: the ranker learns to over-trust them).
    examples_window: str = "validation"
    holdout: float = 0.25
    cross_layers: int = 2
    projection_dim: Optional[int] = None  # low-rank DCN-v2 cross layers when set
    mlp: tuple = (128, 64)
    batch_size: int = 512
    epochs: int = 3
    learning_rate: float = 1e-3


@dataclasses.dataclass(frozen=True)
class RecommendConfig:
    """The two-stage pipeline: retrieve, rank, apply business rules, keep the top k."""

    retrieve_n: int = 200
    k: int = 10
    exclude_event_types: tuple = ("purchase",)  # recent events of these types are not re-shown
    max_per_category: Optional[int] = None  # diversity cap; None: no cap


@dataclasses.dataclass(frozen=True)
class ServingConfig:
    """Request limits of `tfrec serve`, checked on declared shapes and sizes before decoding."""

    max_rows: int = 512  # rows (dimension 0) of any input
    max_history: int = 128  # inner dimension of any input (history lists)
    max_string_bytes: int = 4096  # any string value, e.g. an item id
    max_query_chars: int = 1000  # `query_text`
    max_k: int = 1000  # `k` is also at most the catalog size
    max_request_bytes: int = 4 << 20  # request body (REST) or message (gRPC)
    idle_timeout_seconds: float = 30.0  # a silent REST connection is closed


@dataclasses.dataclass(frozen=True)
class PredictionLogConfig:
    """`tfrec serve --log-dir`: which Predict requests are logged, where, and for how long.

    Built from the server's flags (not a section of the run config: logging belongs to a
    server process, not to a trained model). Values are checked on construction.

    Args:
        log_dir: str. Folder of the prediction and outcome files (created).
        sample_rate: float. Share of successful Predict requests logged, in [0, 1]. Defaults
            to 1.
        sample_seed: int or None. Seed of the sampler, for reproducible samples. Defaults to
            None (a random seed).
        max_file_bytes: int. A file is closed and a new one started before it would grow past
            this size. Defaults to 64 MiB.
        rotate_seconds: float. A file is also closed this long after it was opened, so
            readers see recent records. Defaults to 3600.
        retention_days: float or None. Finished files older than this are deleted. Defaults
            to None (kept).
        max_total_bytes: int or None. The oldest finished files are deleted while the folder
            holds more. Defaults to None (no cap).
        key_file: str or None. Key of the keyed hash that replaces `user_id` values; created
            with a random key when missing. Must lie outside `log_dir`. Required unless
            `raw_user_ids`.
        raw_user_ids: bool. Log `user_id` values as received. Defaults to False.
        queue_size: int. Records waiting for the writer thread; more are dropped and counted.
            Defaults to 1024.
    """

    log_dir: str
    sample_rate: float = 1.0
    sample_seed: Optional[int] = None
    max_file_bytes: int = 64 << 20
    rotate_seconds: float = 3600.0
    retention_days: Optional[float] = None
    max_total_bytes: Optional[int] = None
    key_file: Optional[str] = None
    raw_user_ids: bool = False
    queue_size: int = 1024

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_rate <= 1.0:
            raise errors.ConfigError(
                f"`--log-sample-rate` must be in [0, 1], received {self.sample_rate!r}"
            )
        for flag, value in [
            ("--log-max-file-bytes", self.max_file_bytes),
            ("--log-rotate-seconds", self.rotate_seconds),
            ("--log-retention-days", self.retention_days),
            ("--log-max-total-bytes", self.max_total_bytes),
            ("--log-queue-size", self.queue_size),
        ]:
            if value is not None and not value > 0:
                raise errors.ConfigError(f"`{flag}` must be > 0, received {value!r}")
        if self.key_file is None and not self.raw_user_ids:
            raise errors.ConfigError(
                "`--log-key-file` is required with `--log-dir`: user ids are logged as a keyed "
                "hash whose key lives outside the log folder (created when missing); pass "
                "`--log-raw-user-ids` to log them as received instead"
            )


@dataclasses.dataclass(frozen=True)
class CompressionConfig:
    """`tfrec compress`: the variants it makes, how they fine-tune and how they are measured.

    Read from the trained model's config; the command's flags and `--set compression.*`
    change it for one run. It never changes the trained model.
    """

    # Pruning targets (shares of zeroed weights, each in (0, 1)); the smallest also gets a
    # pruning-preserving QAT variant and an int8 SavedModel.
    sparsities: tuple = (0.5, 0.8)
    # Distillation steps per pruned variant (>= 2): on UCI, 400 kept 50%-pruned towers within
    # 1% of float32 on both scores (200 left the towers' own NDCG@10 1.2% down, 100 2%).
    fine_tune_steps: int = 400
    qat_steps: Optional[int] = None  # per QAT variant (>= 1); None: `fine_tune_steps`
    latency_calls: int = 100  # timed calls per variant and request size
    latency_batch_size: int = 64  # rows of the batched latency request
    # Training examples calibrating the activation ranges of full-integer TFLite models.
    tower_calibration_examples: int = 200
    ranker_calibration_examples: int = 512
    # Targets the report checks (ratios to the float32 variant of the same format); a
    # full-integer ranker flatbuffer is chosen only within the first two.
    max_relative_quality_loss: float = 0.01  # int8 and least-pruned variants' quality
    int8_size_ratio: float = 0.30  # int8 artifacts' raw bytes
    pruned_80_gzip_ratio: float = 0.35  # the 80%-pruned variant, gzipped
    sparsity_tolerance: float = 0.01  # every pruned weight within this of its target


INDEX_KINDS = ("auto", "brute_force", "ivf")
INDEX_QUANTISATIONS = ("float32", "int8")


@dataclasses.dataclass(frozen=True)
class IndexConfig:
    """The item index of the serving graph: which items `retrieve` and `recommend` score.

    Exact brute force scores every item per request; an inverted-file (IVF) index clusters
    the item vectors at export (k-means) and scores only the items of the `nprobe`
    partitions nearest to the query (tfrec.exporting.ivf_index), in core TF ops, so stock TF
    Serving serves it. `auto` keeps brute force below `min_items` items, where it is fast
    enough and exact.

    Args:
        kind: str. "auto", "brute_force" or "ivf". Defaults to "auto".
        nlist: int or None. Partitions (k-means centroids). None: `nlist_factor * sqrt(n)`,
            at least 1. Defaults to None.
        nlist_factor: float. Partitions per sqrt(item) when `nlist` is None. Defaults to 2.
        nprobe: int. Partitions searched per query (clamped to nlist). Defaults to 64: at 1M
            items (nlist 2000) it kept recall@100 >= 0.95 against exact search, 32 did not.
        quantisation: str. "float32": vectors stored as they are, scores exact within the
            probed partitions. "int8": residuals to the centroid stored as int8 with one scale
            per row (a quarter of the memory). Defaults to "float32".
        rescore: int. With "int8": this many best approximate candidates are re-scored exactly
            from float vectors kept by row (0: none kept, scores stay approximate).
            Ignored with "float32". Defaults to 256.
        min_items: int. With `kind` "auto", catalogs smaller than this are searched by brute
            force. Defaults to 200_000.
        train_sample: int. Vectors k-means is trained on (a random sample; all when fewer).
            Defaults to 262_144.
        kmeans_iterations: int. Lloyd iterations. Defaults to 10.
        seed: int. Sampling and centroid initialisation. Defaults to 0.
    """

    kind: str = "auto"
    nlist: Optional[int] = None
    nlist_factor: float = 2.0
    nprobe: int = 64
    quantisation: str = "float32"
    rescore: int = 256
    min_items: int = 200_000
    train_sample: int = 262_144
    kmeans_iterations: int = 10
    seed: int = 0

    def __post_init__(self):
        positive = {
            "nprobe": self.nprobe,
            "train_sample": self.train_sample,
            "kmeans_iterations": self.kmeans_iterations,
        }
        if self.nlist is not None:
            positive["nlist"] = self.nlist
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise errors.ConfigError(
                    f"`index.{name}` must be a positive int, received {value!r}"
                )
        for name in ("rescore", "min_items"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise errors.ConfigError(f"`index.{name}` must be an int >= 0, received {value!r}")
        if not self.nlist_factor > 0:
            raise errors.ConfigError(
                f"`index.nlist_factor` must be > 0, received {self.nlist_factor!r}"
            )
        if self.kind not in INDEX_KINDS:
            raise errors.ConfigError(
                f"`index.kind` must be one of {INDEX_KINDS}, received {self.kind!r}"
            )
        if self.quantisation not in INDEX_QUANTISATIONS:
            raise errors.ConfigError(
                f"`index.quantisation` must be one of {INDEX_QUANTISATIONS}, "
                f"received {self.quantisation!r}"
            )


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """`tfrec bench serving`: catalog sizes, time per measurement, load and grid limits.

    The bench exports the model over a synthetic catalog of each size and measures every cell
    (catalog, served model, signature, protocol, batching) against `tfrec serve`. These settings
    shape the measurement only, never the model.
    """

    # The load generator's bounds (tfrec.serving.loadtest), checked here so a bad value fails
    # before the bench trains or exports anything.
    MAX_SECONDS: typing.ClassVar[float] = 300.0
    MAX_CONCURRENCY: typing.ClassVar[int] = 64
    # Rows of one request: 256 already holds several batches of the server's default
    # `max_batch_size` (32); larger requests would time the client's encoding, not serving.
    MAX_REQUEST_ROWS: typing.ClassVar[int] = 256

    items: tuple = (10_000, 100_000, 1_000_000)  # synthetic catalog sizes, each >= `k`
    seconds: float = 6.0  # per timed phase of a cell: one client, then `concurrency` clients
    # Each phase is split into interleaved rounds, so that load from other jobs on the
    # machine spreads over all cells of a server instead of hitting a few.
    rounds: int = 3
    concurrency: int = 4  # clients of the throughput phase
    warmup_requests: int = 20  # untimed requests per cell before its first round
    k: int = 10  # items each request asks for
    request_pool: int = 64  # distinct synthetic users' moments, sent in turn
    # Rows (users) per request; each value measures every cell once more. A request of n rows
    # holds n consecutive moments of the pool, so each is at most `request_pool`.
    request_rows: tuple = (1,)
    # Larger catalogs are measured over gRPC with batching off only. With the defaults every
    # catalog gets the full grid: 36 cells, about 9-11 min on 2 CPU cores (each cell is
    # time-bounded; the 1M exports and server starts add about a minute).
    full_grid_max_items: int = 1_000_000
    seed: int = 0  # of the synthetic catalogs and requests


@dataclasses.dataclass(frozen=True)
class UpdateConfig:
    """`tfrec update`: warm-starting a trained model on a new window of events.

    Read from the trained model's config; `--set update.*` changes it for one update. It never
    changes the model's architecture, so the updated artifact keeps the same config.
    """

    epochs: int = 2  # epochs of the towers on the new window (early stopping as in training)
    # Old-window training examples replayed per new-window example, sampled uniformly: keeps
    # the towers from forgetting the items and users the new window does not mention.
    replay_ratio: float = 0.5
    # The last share of the new window (in time) that picks the best epoch and tunes the
    # repeat prior; the towers do not train on it, as in a full run's validation window.
    validation_fraction: float = 0.2
    # Ids with no event in this many days before the end of the new window are marked retired
    # (`retired.json`); their rows stay, so no index shifts. None: nothing is retired.
    retire_after_days: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class DataGateConfig:
    """`tfrec gate data`: when a new window of events is fit to update or retrain a model on.

    Each threshold bounds one statistic of the window against the model's training window
    (`tfrec.data.drift`). Read from the model's config; `--set gates.data.*` changes it for
    one check.
    """

    max_dropped_share: float = 0.05  # rows the cleaning drops (missing ids, bad values, ...)
    min_volume_ratio: float = 0.3  # events per day, against the training window's
    max_volume_ratio: float = 3.0
    # Population stability index of the event-type mix; 0.25 is the usual "large shift" mark.
    max_event_type_psi: float = 0.25
    max_new_item_share: float = 0.5  # events on items the model's catalog does not hold
    max_price_ks: float = 0.3  # Kolmogorov-Smirnov distance of event prices (when both have)

    def __post_init__(self):
        for name in ("max_dropped_share", "max_new_item_share", "max_price_ks"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise errors.ConfigError(
                    f"`gates.data.{name}` must be in [0, 1], received {value!r}"
                )
        if not 0.0 <= self.min_volume_ratio <= self.max_volume_ratio:
            raise errors.ConfigError(
                "`gates.data.min_volume_ratio` must be >= 0 and <= `max_volume_ratio`, "
                f"received {self.min_volume_ratio!r} and {self.max_volume_ratio!r}"
            )
        if not self.max_event_type_psi >= 0.0:
            raise errors.ConfigError(
                f"`gates.data.max_event_type_psi` must be >= 0, "
                f"received {self.max_event_type_psi!r}"
            )


@dataclasses.dataclass(frozen=True)
class QualityGateConfig:
    """`tfrec gate quality`: may a candidate model replace the champion, on a held-out window?

    Differences are candidate minus champion on the same queries (absolute metric values).
    """

    metrics: tuple = ("recall@50", "ndcg@10")
    # Each metric's paired bootstrap 95% interval must reach above this: the candidate is not
    # shown worse than the champion by more than it.
    min_difference_low: float = -0.01
    # No slice (items new since the champion, the window's largest categories) may lose more
    # than this, on slices with at least `min_slice_queries` queries.
    max_slice_drop: float = 0.03
    min_slice_queries: int = 30
    categories: int = 5  # the window's largest categories, each a slice

    def __post_init__(self):
        if not self.metrics or any(
            m not in ("recall@10", "recall@50", "ndcg@10", "ndcg@50", "mrr") for m in self.metrics
        ):
            raise errors.ConfigError(
                "`gates.quality.metrics` must be a non-empty list of recall@10, recall@50, "
                f"ndcg@10, ndcg@50 or mrr, received {list(self.metrics)!r}"
            )
        if not self.max_slice_drop >= 0.0 or not self.min_difference_low <= 0.0:
            raise errors.ConfigError(
                "`gates.quality.max_slice_drop` must be >= 0 and `min_difference_low` <= 0, "
                f"received {self.max_slice_drop!r} and {self.min_difference_low!r}"
            )


@dataclasses.dataclass(frozen=True)
class GatesConfig:
    """Checks a new model version or its data must pass before it ships."""

    data: DataGateConfig = DataGateConfig()
    quality: QualityGateConfig = QualityGateConfig()


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    """`tfrec replay`: how the replayed months are served and gated.

    Args:
        refresh_lag_seconds: int >= 0. How far each served index runs behind the event log: a
            query at time t can be shown every item first seen at or before `t - lag`, as if
            `tfrec index refresh` ran continuously. Defaults to 3600, an hourly refresh: the
            refresh measured 25-28 s on the demo, so an hour leaves it ample room on a busy
            machine while new items still reach users on the day they are listed.
        holdout_days: int >= 1. The last days of each replayed month that the update does not
            see: the quality gate compares the updated model with the champion on them, and
            needs events neither model has. Defaults to 7.
    """

    refresh_lag_seconds: int = 3600
    holdout_days: int = 7

    def __post_init__(self):
        for name, low in (("refresh_lag_seconds", 0), ("holdout_days", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise errors.ConfigError(
                    f"`replay.{name}` must be an int >= {low}, received {value!r}"
                )


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything a run needs. Written to `workdir/config.yaml` and into every export."""

    name: str = "run"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    ranking: RankingConfig = RankingConfig()
    recommend: RecommendConfig = RecommendConfig()
    serving: ServingConfig = ServingConfig()
    index: IndexConfig = IndexConfig()
    gates: GatesConfig = GatesConfig()
    bench: BenchConfig = BenchConfig()
    compression: CompressionConfig = CompressionConfig()
    update: UpdateConfig = UpdateConfig()
    replay: ReplayConfig = ReplayConfig()


def _strip_optional(tp):
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = typing.get_args(tp)
        return [a for a in args if a is not type(None)], type(None) in args
    return [tp], False


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Converts a YAML value to the field's type, or raises ConfigError naming the key."""
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise errors.ConfigError(f"`{key}` must be a mapping, received {value!r}")
        return from_dict(tp, value, prefix=key + ".")
    options, optional = _strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise errors.ConfigError(f"`{key}` must not be null")
    for option in options:
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, str):
            return value
        if option is str and isinstance(value, datetime.date):
            # YAML reads an unquoted 2011-10-01 as a date; cut-offs are ISO strings.
            return value.isoformat()
        if option is tuple and isinstance(value, (list, tuple)):
            return tuple(value)
        if option is dict and isinstance(value, dict):
            return dict(value)
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise errors.ConfigError(
        f"`{key}` must be {names}{' or null' if optional else ''}, "
        f"received {value!r} ({type(value).__name__})"
    )


def from_dict(cls, data: dict, prefix: str = ""):
    """Builds dataclass `cls` from a nested dict; unknown keys and wrong types are errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise errors.ConfigError(
            f"unknown config key `{prefix}{unknown[0]}`; expected one of {sorted(names)}"
        )
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(config) -> dict:
    """The config as plain YAML-ready data (tuples become lists)."""

    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(config))


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise errors.ConfigError(f"`{dotted}`: `{part}` is not a mapping")
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Parses `key.sub=value`; the value is read as YAML (so `3`, `true`, `[10, 50]` work)."""
    if "=" not in text:
        raise errors.ConfigError(f"override must look like `key.sub=value`, received {text!r}")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw) if raw.strip() else ""


def _merge(base: dict, override: dict) -> dict:
    """`override` on top of `base`: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path, chain: tuple = ()) -> dict:
    """A config file as a dict, its `base:` file (relative to it) merged underneath."""
    if not path.is_file():
        where = f" (the `base` of `{chain[-1]}`)" if chain else ""
        raise errors.ConfigError(f"config file `{path}`{where} does not exist")
    if path.resolve() in chain:
        raise errors.ConfigError(
            f"config file `{path}`: `base` files form a cycle: "
            + " -> ".join(str(p) for p in (*chain, path.resolve()))
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise errors.ConfigError(f"config file `{path}` is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise errors.ConfigError(f"config file `{path}` must hold a mapping at top level")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise errors.ConfigError(
            f"config file `{path}`: `base` must be a file name, received {base!r}"
        )
    return _merge(_read_yaml(path.parent / base, (*chain, path.resolve())), data)


def load(path: Optional[str] = None, overrides: typing.Sequence[str] = ()) -> Config:
    """Loads a YAML config (or the defaults) and applies `key=value` overrides.

    A file may start from another: `base: demo.yaml` (a path relative to the file) loads that
    one first and this file's keys override it, mappings merged key by key, so a config states
    only how it differs.
    """
    data: dict = {}
    if path is not None:
        data = _read_yaml(Path(path))
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(data, key, value)
    config = from_dict(Config, data)
    check(config)
    return config


def check(config: Config) -> None:
    """Value checks that a type cannot express."""
    choices = {
        "data.dataset": (
            config.data.dataset,
            ("synthetic", "online-retail", "movielens", "amazon-reviews", "csv"),
        ),
        "model.history_encoder": (config.model.history_encoder, ("pooling", "attention", "gru")),
        "train.precision": (
            config.train.precision,
            ("auto", "float32", "mixed_float16", "mixed_bfloat16"),
        ),
        "train.distribution": (
            config.train.distribution,
            ("auto", "none", "mirrored", "multi_worker"),
        ),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise errors.ConfigError(f"`{key}` must be one of {allowed}, received {value!r}")
    if config.data.dataset != "synthetic" and config.data.dataset != "csv" and not config.data.path:
        raise errors.ConfigError(f"`data.path` is required for dataset `{config.data.dataset}`")
    if not (config.model.use_item_ids or config.model.use_text):
        raise errors.ConfigError("`model.use_item_ids` and `model.use_text` cannot both be false")
    for field in dataclasses.fields(ServingConfig):
        value = getattr(config.serving, field.name)
        if not value > 0:
            raise errors.ConfigError(f"`serving.{field.name}` must be > 0, received {value!r}")
    bench = config.bench
    if not 1 <= bench.k <= config.serving.max_k:
        raise errors.ConfigError(
            f"`bench.k` must be in [1, `serving.max_k` = {config.serving.max_k}], "
            f"received {bench.k!r}"
        )
    if not bench.items or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= bench.k for n in bench.items
    ):
        raise errors.ConfigError(
            "`bench.items` must be a non-empty list of catalog sizes, each an int >= `bench.k` "
            f"({bench.k}), received {list(bench.items)!r}"
        )
    if not 0 < bench.seconds <= BenchConfig.MAX_SECONDS:
        raise errors.ConfigError(
            f"`bench.seconds` must be in (0, {BenchConfig.MAX_SECONDS:g}], "
            f"received {bench.seconds!r}"
        )
    bench_bounds = {  # field: (lowest, highest or None)
        "concurrency": (1, BenchConfig.MAX_CONCURRENCY),
        "rounds": (1, None),
        "warmup_requests": (0, None),
        "request_pool": (1, None),
        "full_grid_max_items": (0, None),
    }
    for name, (low, high) in bench_bounds.items():
        value = getattr(bench, name)
        if value < low or (high is not None and value > high):
            expected = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise errors.ConfigError(f"`bench.{name}` must be {expected}, received {value!r}")
    rows_max = min(BenchConfig.MAX_REQUEST_ROWS, bench.request_pool)
    if not bench.request_rows or not all(
        isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= rows_max
        for n in bench.request_rows
    ):
        raise errors.ConfigError(
            "`bench.request_rows` must be a non-empty list of rows per request, each an int in "
            f"[1, {BenchConfig.MAX_REQUEST_ROWS}] and <= `bench.request_pool` "
            f"({bench.request_pool}), received {list(bench.request_rows)!r}"
        )
    if config.data.max_history < 1:
        raise errors.ConfigError(
            f"`data.max_history` must be >= 1, received {config.data.max_history}"
        )
    text = config.model.text_encoder
    if text.mode not in ("scratch", "frozen", "finetune"):
        raise errors.ConfigError(
            "`model.text_encoder.mode` must be one of ('scratch', 'frozen', 'finetune'), "
            f"received {text.mode!r}"
        )
    if text.mode != "scratch" and not text.preset:
        raise errors.ConfigError(
            f"`model.text_encoder.preset` is required by mode {text.mode!r}: a preset "
            "directory, or 'default' (run `tfrec text fetch-default` first)"
        )
    if text.mode == "finetune" and not (
        isinstance(text.trainable_layers, int) and text.trainable_layers >= 1
    ):
        raise errors.ConfigError(
            "`model.text_encoder.trainable_layers` must be an int >= 1 in mode 'finetune', "
            f"received {text.trainable_layers!r}"
        )
    student = text.query_student
    if student.layers:
        if text.mode == "scratch":
            raise errors.ConfigError(
                "`model.text_encoder.query_student.layers` needs mode 'frozen' or 'finetune' "
                "(a student of the pretrained model), received mode 'scratch'; set it to 0"
            )
        for name, low in (("layers", 0), ("steps", 1), ("batch_size", 1)):
            value = getattr(student, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise errors.ConfigError(
                    f"`model.text_encoder.query_student.{name}` must be an int >= {low}, "
                    f"received {value!r}"
                )
        if not student.learning_rate > 0:
            raise errors.ConfigError(
                "`model.text_encoder.query_student.learning_rate` must be > 0, received "
                f"{student.learning_rate!r}"
            )
    compression = config.compression
    sparsities = compression.sparsities
    if not sparsities or not all(
        isinstance(s, (int, float)) and not isinstance(s, bool) and 0 < s < 1 for s in sparsities
    ):
        raise errors.ConfigError(
            "`compression.sparsities` must list at least one share of zeroed weights, each in "
            f"(0, 1), e.g. [0.5, 0.8], received {list(sparsities)!r}"
        )
    # Pruning schedules need a step after their end: at least 2 fine-tuning steps.
    smallest = {
        "fine_tune_steps": 2,
        "qat_steps": 1,
        "latency_calls": 1,
        "latency_batch_size": 1,
        "tower_calibration_examples": 1,
        "ranker_calibration_examples": 1,
    }
    for name, low in smallest.items():
        value = getattr(compression, name)
        if value is None and name == "qat_steps":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise errors.ConfigError(
                f"`compression.{name}` must be an int >= {low}, received {value!r}"
            )
    for name in (
        "max_relative_quality_loss",
        "int8_size_ratio",
        "pruned_80_gzip_ratio",
        "sparsity_tolerance",
    ):
        value = getattr(compression, name)
        if not 0 <= value <= 1:
            raise errors.ConfigError(f"`compression.{name}` must be in [0, 1], received {value!r}")
    _check_update(config.update)


def _check_update(update: UpdateConfig) -> None:
    if isinstance(update.epochs, bool) or not isinstance(update.epochs, int) or update.epochs < 1:
        raise errors.ConfigError(f"`update.epochs` must be an int >= 1, received {update.epochs!r}")
    if not update.replay_ratio >= 0:
        raise errors.ConfigError(
            f"`update.replay_ratio` must be >= 0, received {update.replay_ratio!r}"
        )
    if not 0 < update.validation_fraction < 1:
        raise errors.ConfigError(
            "`update.validation_fraction` must lie in (0, 1), "
            f"received {update.validation_fraction!r}"
        )
    days = update.retire_after_days
    if days is not None and not days > 0:
        raise errors.ConfigError(
            f"`update.retire_after_days` must be > 0 or null, received {days!r}"
        )


def dump(config: Config) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def save(config: Config, path: os.PathLike | str) -> None:
    """Writes the resolved config atomically (temporary file, then rename)."""
    write_text_atomic(path, dump(config))


def write_text_atomic(path: os.PathLike | str, text: str, mode: Optional[int] = None) -> None:
    """Writes `path` through a temporary sibling `.<name>.*` and a rename: readers see the old
    file or the new one, never half of one.

    `mode` (e.g. 0o644 for a file a server running as another user reads) is set before the
    rename; None keeps the temporary file's private mode (0o600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def with_overrides(
    config: Config, overrides: typing.Sequence[str], allowed: typing.Sequence[str]
) -> Config:
    """`config` with `key=value` overrides, each key under one of the `allowed` sections.

    A trained model's config is fixed; only settings that do not change the model (for
    example `eval.*` when evaluating) may be changed afterwards.

    Raises:
        errors.ConfigError: a key outside `allowed`, unknown, or of the wrong type.
    """
    data = to_dict(config)
    for text in overrides:
        key, value = parse_override(text)
        if not any(key == a or key.startswith(a + ".") for a in allowed):
            raise errors.ConfigError(
                f"`{key}` cannot change after training: only {sorted(allowed)} may be set here"
            )
        _set_dotted(data, key, value)
    updated = from_dict(Config, data)
    check(updated)
    return updated
