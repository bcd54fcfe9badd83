"""Loader for MovieLens 100K (`u.data`, `u.item`) and 1M (`ratings.dat`, `movies.dat`) folders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from tfrec import errors
from tfrec.data import cleaning, fields, schema, textfile

# u.genre of MovieLens 100K, in flag order (used when the folder has no u.genre).
GENRES_100K = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
RATINGS = ("user_id", "item_id", "rating", "timestamp")
_TAB = textfile.TextFormat(sep="\t", header=False, quoting=False)
_PIPE = textfile.TextFormat(sep="|", header=False, encoding="latin-1", quoting=False)
_DAT = textfile.TextFormat(sep="::", header=False, encoding="latin-1", quoting=False)


def load(path: os.PathLike | str, rules: Optional[cleaning.Rules] = None) -> schema.Dataset:
    """Loads a MovieLens 100K or 1M folder as `rating` events.

    The title is the movie title; the category is its first genre and the description lists
    all genres (plus the release date for 100K). User attributes (gender, age, occupation)
    come from `u.user` / `users.dat` when present.

    Args:
        path: str. The folder (e.g. `ml-100k/` or `ml-1m/`).
        rules: cleaning.Rules or None. Strict mode, plausible times, field size; None: defaults.

    Returns:
        A schema.Dataset named `movielens`.

    Raises:
        errors.DataError: the folder holds neither format, or a file is malformed; in strict
            mode also an exact duplicate rating row or an implausible timestamp.
    """
    rules = cleaning.Rules() if rules is None else rules
    size = rules.max_field_size
    folder = Path(path)
    if (folder / "u.data").is_file():
        ratings_path, fmt = folder / "u.data", _TAB
        items = _items_100k(folder, size)
        names = ("user_id", "age", "gender", "occupation", "zip")
        users = _users(folder / "u.user", _PIPE, names, size)
    elif (folder / "ratings.dat").is_file():
        ratings_path, fmt = folder / "ratings.dat", _DAT
        items = _items_1m(folder / "movies.dat", size)
        names = ("user_id", "gender", "age", "occupation", "zip")
        users = _users(folder / "users.dat", _DAT, names, size)
    else:
        found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else "no such folder"
        raise errors.DataError(
            "expected a MovieLens folder with `u.data` (100K) or `ratings.dat` (1M), "
            f"received {found}",
            path=folder,
        )
    raw = textfile.read_table(ratings_path, fmt, names=RATINGS, max_field_size=size)
    report = schema.CleaningReport(source=str(ratings_path), rows_read=len(raw))
    rating = fields.parse_numbers(raw["rating"], ratings_path, "rating", fmt, "a rating like 4")
    seconds = fields.parse_numbers(
        raw["timestamp"], ratings_path, "timestamp", fmt, "unix seconds like 881250949"
    )
    user = raw["user_id"].str.strip().to_numpy(dtype=object)
    item = raw["item_id"].str.strip().to_numpy(dtype=object)
    cleaner = cleaning.Cleaner(report, raw.index, ratings_path, fmt, rules)
    missing = (user == "") | (item == "") | np.isnan(rating) | np.isnan(seconds)
    cleaner.drop("missing user, item, rating or timestamp", missing)
    whole = np.clip(np.nan_to_num(seconds), -(2.0**62), 2.0**62).astype(np.int64)
    cleaner.times(raw["timestamp"], whole, ~np.isnan(seconds), "timestamp")
    unknown = ~np.isin(item, items["item_id"].to_numpy())
    cleaner.drop("movie missing from the movie file", unknown, lambda p: f"movie {item[p]!r}")
    cleaner.duplicates(raw)
    cleaner.finish()
    keep = cleaner.keep
    interactions = pd.DataFrame(
        {
            "user_id": user[keep],
            "item_id": item[keep],
            "timestamp": whole[keep],
            "event_type": "rating",
            "value": rating[keep],
            "quantity": 1.0,
            "price": np.nan,
        }
    ).sort_values("timestamp", kind="stable")
    report.rows_kept = len(interactions)
    report.treatments = {
        "ratings": "Each rating is a `rating` event whose value is the star rating.",
        "text": "Title = movie title; category = first genre; description = all genres.",
        "price": "MovieLens has no prices: `price` is NaN.",
    }
    seen = pd.unique(interactions["user_id"])
    if users is None:
        users = pd.DataFrame({"user_id": seen})
    else:
        users = users.drop_duplicates("user_id")
        users = pd.DataFrame({"user_id": seen}).merge(users, on="user_id", how="left").fillna("")
    return schema.Dataset("movielens", interactions, items, users, report)


def _items_100k(folder: Path, size: int) -> pd.DataFrame:
    path = folder / "u.item"
    genre_path = folder / "u.genre"
    genres = list(GENRES_100K)
    if genre_path.is_file():
        table = textfile.read_table(genre_path, _PIPE, ("genre", "index"), size)
        genres = table.loc[table["genre"] != "", "genre"].tolist()
    names = ["item_id", "title", "release_date", "video_release_date", "url"] + genres
    raw = textfile.read_table(path, _PIPE, names, size)
    flags = raw[genres].to_numpy(dtype=object) == "1"
    genre_lists = [[g for g, on in zip(genres, row, strict=True) if on] for row in flags]
    dates = raw["release_date"].str.strip().to_numpy(dtype=object)
    return _frame(raw, genre_lists, [f" Released {d}." if d else "" for d in dates])


def _items_1m(path: Path, size: int) -> pd.DataFrame:
    raw = textfile.read_table(path, _DAT, ("item_id", "title", "genres"), size)
    genre_lists = [[g for g in s.split("|") if g] for s in raw["genres"].str.strip()]
    return _frame(raw, genre_lists, [""] * len(raw))


def _frame(raw: pd.DataFrame, genre_lists, suffixes) -> pd.DataFrame:
    items = pd.DataFrame({"item_id": raw["item_id"].str.strip().to_numpy(dtype=object)})
    items["title"] = raw["title"].str.strip().to_numpy(dtype=object)
    items["category"] = [g[0] if g else "" for g in genre_lists]
    items["description"] = [
        ("Genres: " + ", ".join(g) + "." if g else "") + s
        for g, s in zip(genre_lists, suffixes, strict=True)
    ]
    items["description"] = items["description"].str.strip()
    items["price"] = np.nan
    return items[items["item_id"] != ""].drop_duplicates("item_id")


def _users(path: Path, fmt: textfile.TextFormat, names, size: int) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    raw = textfile.read_table(path, fmt, names, size)
    return raw[[c for c in names if c != "zip"]].apply(lambda c: c.str.strip())
