"""`tfrec bench paraphrase`: per-query precision from the served path, and how bad CSVs are refused."""

import json

import pytest

from tfrec import artifact, errors
from tfrec.pipelines import bench_paraphrase


@pytest.mark.parametrize(
    "content, pattern",
    [
        ("text,category\nx,y\n", r"row 1.*expected the columns query,category"),
        ("query,category\nred,\n", r"row 2, field `category`.*non-empty"),
        ("query,category\n", r"at least one query row"),
    ],
)
def test_bad_csv_is_refused_naming_row_and_field(tmp_path, content, pattern):
    path = tmp_path / "q.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(errors.DataError, match=pattern):
        bench_paraphrase.read_queries(path)


def test_precision_counts_the_answers_in_the_expected_category(tiny_run, tmp_path):
    catalog = artifact.Artifact(tiny_run.artifact).catalog()
    category_of = dict(zip(catalog["item_id"], catalog["category"], strict=True))
    word = str(catalog["title"].iloc[0]).split()[0]
    category = str(catalog["category"].iloc[0])
    queries = tmp_path / "q.csv"
    queries.write_text(f"query,category\n{word} zzzq,{category}\n", encoding="utf-8")
    out = str(tmp_path / "out")
    report = bench_paraphrase.run(str(tiny_run.artifact), str(queries), out, k=3, repeats=2)
    assert report["recommend_ms"]["queries"]["calls"] == 2
    assert report["recommend_ms"]["six_words"]["calls"] == 2  # as many as all the queries
    assert report["recommend_ms"]["queries"]["p50"] > 0 and report["served_recommend_ms"] is None
    row = report["queries"][0]
    assert row["catalog_words"] == [word.lower()]  # "zzzq" is in no title or description
    assert row["precision"] == sum(category_of[i] == category for i in row["top"]) / 3
    assert row["chance"] == pytest.approx((catalog["category"] == category).mean())
    saved = json.loads((tmp_path / "out" / "paraphrase.json").read_text(encoding="utf-8"))
    assert saved["mean_precision"] == row["precision"]
    unknown = tmp_path / "u.csv"
    unknown.write_text("query,category\nred,no such category\n", encoding="utf-8")
    with pytest.raises(errors.DataError, match="categories of the model's catalog"):
        bench_paraphrase.run(str(tiny_run.artifact), str(unknown), str(tmp_path / "out"))


@pytest.mark.slow  # an export and a server of their own: about 40 s on 2 cores
def test_served_recommend_is_timed_and_answers_as_in_process(tiny_run, tmp_path):
    from tfrec.pipelines import export as export_run

    export_dir = tmp_path / "export"
    export_run.export(str(tiny_run.artifact), export_dir)
    catalog = artifact.Artifact(tiny_run.artifact).catalog()
    titles = catalog["title"].astype(str)
    categories = catalog["category"].astype(str)
    queries = tmp_path / "q.csv"
    lines = [f"{t.split()[0]},{c}" for t, c in zip(titles[:3], categories[:3], strict=True)]
    queries.write_text("query,category\n" + "\n".join(lines) + "\n", encoding="utf-8")
    report = bench_paraphrase.run(
        str(tiny_run.artifact),
        str(queries),
        str(tmp_path / "out"),
        k=5,
        repeats=2,
        export_dir=str(export_dir),
    )
    served = report["served_recommend_ms"]
    assert served["compared"] == 3 and served["same_items"] == 3  # one inference path
    assert served["queries"]["calls"] == 6 and served["six_words"]["calls"] == 6
    assert served["queries"]["p50"] > 0 and served["server_peak_rss_mb"] > 0
    assert "served (gRPC)" in (tmp_path / "out" / "paraphrase.md").read_text(encoding="utf-8")
    with pytest.raises(errors.ConfigError, match="has no `tfrec_text` model"):
        bench_paraphrase.run(
            str(tiny_run.artifact), str(queries), str(tmp_path / "out"), export_dir=str(tmp_path)
        )
