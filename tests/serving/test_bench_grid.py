"""The serving bench's grid: the full grid up to a catalog size, and what it skips."""

from tfrec.serving import bench_grid


def test_plan_full_grid_up_to_the_limit_and_says_what_it_skips():
    groups, skipped = bench_grid.plan((2000, 1_000_000), with_recommend=True, full_grid_max=100_000)
    assert [(g.items, g.batching) for g in groups] == [
        (2000, False),
        (2000, True),
        (1_000_000, False),
    ]
    small = groups[0].cells
    assert {(c.model, c.signature, c.protocol) for c in small} == {
        ("tfrec", "retrieve", "grpc"),
        ("tfrec", "retrieve", "rest"),
        ("tfrec", "recommend", "grpc"),
        ("tfrec", "recommend", "rest"),
        ("tfrec_f32", "retrieve", "grpc"),
        ("tfrec_int8", "retrieve", "grpc"),
    }
    assert all(c.items == 2000 and not c.batching for c in small)
    large = groups[2].cells
    assert len(large) == 4 and {c.protocol for c in large} == {"grpc"}
    assert len(skipped) == 1 and "1,000,000 items" in skipped[0]
    assert "`bench.full_grid_max_items`" in skipped[0]
    groups, skipped = bench_grid.plan((2000,), with_recommend=False, full_grid_max=0)
    assert "no trained ranker" in skipped[0]
    assert {c.signature for c in groups[0].cells} == {"retrieve"}


def test_a_result_names_its_cell():
    cell = bench_grid.Cell(10_000, "tfrec_int8", "retrieve", "grpc", True)
    result = {"items": 10_000, "model": "tfrec_int8", "signature": "retrieve"}
    result.update(protocol="grpc", batching=True, single={"p50_ms": 1.0})
    assert bench_grid.Cell.from_result(result) == cell
    assert cell.label == "   10,000 items tfrec_int8 retrieve  grpc batching on    1 rows"
    result["rows"] = 32
    assert bench_grid.Cell.from_result(result) == bench_grid.Cell(
        10_000, "tfrec_int8", "retrieve", "grpc", True, rows=32
    )


def test_each_rows_per_request_is_a_cell_of_its_own():
    groups, _ = bench_grid.plan((2000,), with_recommend=True, full_grid_max=0, rows=(1, 32))
    (group,) = groups
    assert len(group.cells) == 8 and len(set(group.cells)) == 8
    assert {(c.model, c.signature, c.rows) for c in group.cells} == {
        (m, s, r)
        for m, s in (
            ("tfrec", "retrieve"),
            ("tfrec", "recommend"),
            ("tfrec_f32", "retrieve"),
            ("tfrec_int8", "retrieve"),
        )
        for r in (1, 32)
    }
