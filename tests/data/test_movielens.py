"""Tests for the MovieLens 100K and 1M loaders on tiny hand-written folders."""

import pytest

import tfrec  # noqa: F401
from tfrec import errors
from tfrec.data import cleaning, movielens

FLAGS_ANIMATION_COMEDY = "|".join("1" if g in (3, 5) else "0" for g in range(19))
FLAGS_NONE = "|".join("0" for _ in range(19))


def test_100k(write, tmp_path):
    write("ml/u.data", ["1\t10\t4\t881250949", "2\t20\t3\t881250950", "1\t20\t5\t881250940",
                        "3\t99\t2\t881250000"])  # fmt: skip
    write("ml/u.item", [f"10|Toy Story (1995)|01-Jan-1995||http://x|{FLAGS_ANIMATION_COMEDY}",
                        f"20|Café \"Noir\" (1996)|01-Jan-1996||http://y|{FLAGS_NONE}"],
          encoding="latin-1")  # fmt: skip
    write("ml/u.user", ["1|24|M|technician|85711", "2|53|F|other|94043"])
    ds = movielens.load(tmp_path / "ml")
    inter = ds.interactions
    assert inter["timestamp"].tolist() == [881250940, 881250949, 881250950]
    assert inter["value"].tolist() == [5.0, 4.0, 3.0]
    assert set(inter["event_type"]) == {"rating"}
    assert ds.report.dropped["movie missing from the movie file"] == 1  # movie 99
    items = ds.items.set_index("item_id")
    assert items.loc["10", "category"] == "Animation"
    assert items.loc["10", "description"] == "Genres: Animation, Comedy. Released 01-Jan-1995."
    assert items.loc["20", "title"] == 'Café "Noir" (1996)'  # latin-1, quotes kept
    assert items.loc["20", "category"] == ""
    users = ds.users.set_index("user_id")
    assert users.loc["2"].tolist() == ["53", "F", "other"]


def test_1m(write, tmp_path):
    write("ml/ratings.dat", ["1::10::5::978300760", "1::20::3::978302109", "2::10::4::978300000"])
    write("ml/movies.dat", ["10::Toy Story (1995)::Animation|Children's|Comedy",
                            "20::Jumanji (1995)::Adventure"])  # fmt: skip
    write("ml/users.dat", ["1::F::1::10::48067"])
    ds = movielens.load(tmp_path / "ml")
    assert ds.interactions["user_id"].tolist() == ["2", "1", "1"]
    items = ds.items.set_index("item_id")
    assert items.loc["10", "description"] == "Genres: Animation, Children's, Comedy."
    assert items.loc["20", "category"] == "Adventure"
    users = ds.users.set_index("user_id")
    assert users.loc["1", "gender"] == "F" and users.loc["2", "gender"] == ""


def test_bad_rating_names_line(write, tmp_path):
    write("ml/ratings.dat", ["1::10::5::978300760", "1::10::five::978300761"])
    write("ml/movies.dat", ["10::Toy Story (1995)::Animation"])
    with pytest.raises(errors.DataError, match="ratings.dat`, row 2, field `rating`"):
        movielens.load(tmp_path / "ml")


def test_folder_without_ratings(tmp_path):
    with pytest.raises(errors.DataError, match="u.data.*ratings.dat"):
        movielens.load(tmp_path)


def test_duplicate_and_implausible_ratings_are_dropped_and_named(write, tmp_path):
    write("ml/ratings.dat", ["1::10::5::978300760", "1::10::5::978300760", "2::10::4::0",
                             "3::10::4::978300000"])  # fmt: skip
    write("ml/movies.dat", ["10::Toy Story (1995)::Animation"])
    ds = movielens.load(tmp_path / "ml")
    assert ds.report.dropped["exact duplicate row"] == 1
    assert ds.report.dropped["timestamp outside the plausible time range"] == 1
    assert ds.report.examples["exact duplicate row"] == ["row 2: copy of row 1"]  # no header
    assert ds.report.examples["timestamp outside the plausible time range"] == [
        "row 3: `timestamp` '0' (1970-01-01 00:00:00 UTC)"
    ]
    assert ds.interactions["user_id"].tolist() == ["3", "1"]


def test_strict_refuses_a_duplicate_rating(write, tmp_path):
    write("ml/u.data", ["1\t10\t4\t881250949", "2\t10\t3\t881250950", "1\t10\t4\t881250949"])
    write("ml/u.item", [f"10|Toy Story (1995)|01-Jan-1995||http://x|{FLAGS_NONE}"])
    with pytest.raises(errors.DataError, match=r"u\.data`, row 3: expected each row once, "
                       "received a copy of row 1"):  # fmt: skip
        movielens.load(tmp_path / "ml", cleaning.Rules(strict=True))
