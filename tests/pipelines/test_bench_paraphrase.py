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
    assert report["recommend_ms"]["calls"] == 2 and report["recommend_ms"]["p50"] > 0
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
