"""Loader for MovieLens 100K (`u.data`, `u.item`) and 1M (`ratings.dat`, `movies.dat`) folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from tfrec import errors
from tfrec.data import loaders, schema

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
_TAB = loaders.TextFormat(sep="\t", header=False, quoting=False)
_PIPE = loaders.TextFormat(sep="|", header=False, encoding="latin-1", quoting=False)
_DAT = loaders.TextFormat(sep="::", header=False, encoding="latin-1", quoting=False)


def load(path: os.PathLike | str) -> schema.Dataset:
    """Loads a MovieLens 100K or 1M folder as `rating` events.

    The title is the movie title; the category is its first genre and the description lists
    all genres (plus the release date for 100K). User attributes (gender, age, occupation)
    come from `u.user` / `users.dat` when present.

    Args:
        path: str. The folder (e.g. `ml-100k/` or `ml-1m/`).

    Returns:
        A schema.Dataset named `movielens`.

    Raises:
        errors.DataError: the folder holds neither format, or a file is malformed.
    """
    folder = Path(path)
    if (folder / "u.data").is_file():
        ratings_path, fmt = folder / "u.data", _TAB
        items = _items_100k(folder)
        users = _users(folder / "u.user", _PIPE, ("user_id", "age", "gender", "occupation", "zip"))
    elif (folder / "ratings.dat").is_file():
        ratings_path, fmt = folder / "ratings.dat", _DAT
        items = _items_1m(folder / "movies.dat")
        users = _users(
            folder / "users.dat", _DAT, ("user_id", "gender", "age", "occupation", "zip")
        )
    else:
        found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else "no such folder"
        raise errors.DataError(
            "expected a MovieLens folder with `u.data` (100K) or `ratings.dat` (1M), "
            f"received {found}",
            path=folder,
        )
    raw = loaders.read_table(ratings_path, fmt, names=RATINGS)
    report = schema.CleaningReport(source=str(ratings_path), rows_read=len(raw))
    rating = loaders.parse_numbers(raw["rating"], ratings_path, "rating", fmt, "a rating like 4")
    seconds = loaders.parse_numbers(
        raw["timestamp"], ratings_path, "timestamp", fmt, "unix seconds like 881250949"
    )
    user = raw["user_id"].str.strip().to_numpy(dtype=object)
    item = raw["item_id"].str.strip().to_numpy(dtype=object)
    keep = np.ones(len(raw), dtype=bool)
    for reason, bad in (
        ("missing user, item, rating or timestamp", (user == "") | (item == "")),
        ("missing user, item, rating or timestamp", np.isnan(rating) | np.isnan(seconds)),
        ("movie missing from the movie file", ~np.isin(item, items["item_id"].to_numpy())),
    ):
        report.drop(reason, (keep & bad).sum())
        keep &= ~bad
    interactions = pd.DataFrame(
        {
            "user_id": user[keep],
            "item_id": item[keep],
            "timestamp": seconds[keep].astype(np.int64),
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


def _items_100k(folder: Path) -> pd.DataFrame:
    path = folder / "u.item"
    genre_path = folder / "u.genre"
    genres = list(GENRES_100K)
    if genre_path.is_file():
        table = loaders.read_table(genre_path, _PIPE, names=("genre", "index"))
        genres = table.loc[table["genre"] != "", "genre"].tolist()
    names = ["item_id", "title", "release_date", "video_release_date", "url"] + genres
    raw = loaders.read_table(path, _PIPE, names=names)
    flags = raw[genres].to_numpy(dtype=object) == "1"
    genre_lists = [[g for g, on in zip(genres, row, strict=True) if on] for row in flags]
    dates = raw["release_date"].str.strip().to_numpy(dtype=object)
    return _frame(raw, genre_lists, [f" Released {d}." if d else "" for d in dates])


def _items_1m(path: Path) -> pd.DataFrame:
    raw = loaders.read_table(path, _DAT, names=("item_id", "title", "genres"))
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


def _users(path: Path, fmt: loaders.TextFormat, names) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    raw = loaders.read_table(path, fmt, names=names)
    return raw[[c for c in names if c != "zip"]].apply(lambda c: c.str.strip())
