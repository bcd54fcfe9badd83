"""The serving bench's grid: which cells are measured, grouped by the server that runs them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from tfrec.serving import bench_report


@dataclasses.dataclass(frozen=True)
class Cell:
    """One measured combination: catalog size, served model, signature, protocol, batching and
    rows per request.

    Args:
        items: int. Synthetic catalog size.
        model: str. Served model name (`bench_report.MAIN`, `F32` or `INT8`).
        signature: str. `"retrieve"` or `"recommend"`.
        protocol: str. `"grpc"` or `"rest"`.
        batching: bool. Whether the server batches requests.
        rows: int. Rows (users) in each request. Defaults to 1.
    """

    items: int
    model: str
    signature: str
    protocol: str
    batching: bool
    rows: int = 1

    @classmethod
    def from_result(cls, result: Mapping[str, Any]) -> Cell:
        """The cell a result dict of `bench_cells.measure_group` describes (results written
        before `rows` existed are of one row)."""
        names = (f.name for f in dataclasses.fields(cls))
        return cls(**{name: result[name] for name in names if name in result})

    @property
    def label(self) -> str:
        return (
            f"{self.items:>9,} items {self.model:<10} {self.signature:<9} {self.protocol:<4} "
            f"batching {'on ' if self.batching else 'off'} {self.rows:>3} rows"
        )


@dataclasses.dataclass(frozen=True)
class ServerGroup:
    """The cells one server process measures: one catalog, batching on or off."""

    items: int
    batching: bool
    cells: tuple[Cell, ...]


def plan(
    items: Sequence[int],
    with_recommend: bool,
    full_grid_max: int,
    rows: Sequence[int] = (1,),
) -> tuple[list[ServerGroup], list[str]]:
    """Cells grouped by server run, and what was skipped (with why).

    Every catalog up to `full_grid_max` items gets the full grid: batching off and on, gRPC
    and REST for the main model's signatures, plus `retrieve` of the float32 and int8 layouts
    over gRPC. Larger catalogs get gRPC with batching off only (time budget). Each of these
    is measured once per value of `rows`.

    Args:
        items: sequence of int. Catalog sizes, in the order measured.
        with_recommend: bool. Measure the `recommend` signature too (the model has a ranker).
        full_grid_max: int. Largest catalog measured on the full grid.
        rows: sequence of int. Rows per request, each a cell of its own. Defaults to (1,).

    Returns:
        `(groups, skipped)`: one ServerGroup per server process, and one line per thing not
        measured.
    """
    main, f32, int8 = bench_report.MAIN, bench_report.F32, bench_report.INT8
    signatures = ("retrieve", "recommend") if with_recommend else ("retrieve",)
    groups: list[ServerGroup] = []
    skipped: list[str] = []
    if not with_recommend:
        skipped.append("recommend: the workdir has no trained ranker, so the export has none")
    for n in items:
        full = n <= full_grid_max
        for batching in (False, True) if full else (False,):
            protocols = ("grpc", "rest") if full else ("grpc",)
            cells = [
                Cell(n, main, s, p, batching, r)
                for s in signatures
                for p in protocols
                for r in rows
            ]
            cells += [
                Cell(n, m, "retrieve", "grpc", batching, r) for m in (f32, int8) for r in rows
            ]
            groups.append(ServerGroup(n, batching, tuple(cells)))
        if not full:
            skipped.append(
                f"{n:,} items: REST and batching on not measured, only gRPC with batching off "
                f"(time budget on 2 CPU cores; catalogs up to {full_grid_max:,} items get the "
                "full grid, `bench.full_grid_max_items`)"
            )
    return groups, skipped
