"""The embedded synthetic shop: attribute-driven catalog text and users whose choices follow it.

Just over 400 lines: the catalog, the users and the event simulation share one world (the
attribute vocabularies and the seeded generator) and are tested as one generator.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from tfrec import errors
from tfrec.data import schema

START = 1704067200  # 2024-01-01 00:00:00 UTC
SPAN = 180 * 86400
COLORS = ("black", "white", "navy", "red", "green", "grey", "beige", "blue", "pink", "yellow")
STYLES = ("classic", "modern", "vintage", "minimalist", "sporty", "eco-friendly", "compact")
SEGMENTS = ("budget", "standard", "premium")  # users' preferred brand tier
TIER_MULT = np.array([0.6, 1.0, 1.9])
# name, base price, kinds (product-type nouns), material label, materials, variant label,
# variants, consumable
CATEGORIES = (
    ("apparel", 35, ("shirt", "jacket", "hoodie", "dress", "sweater", "jeans", "scarf"),
     "fabric", ("cotton", "wool", "linen", "denim", "silk", "fleece"), "colour", COLORS, False),
    ("footwear", 60, ("sneakers", "boots", "sandals", "loafers", "slippers", "running shoes"),
     "upper", ("leather", "suede", "canvas", "mesh"), "colour", COLORS, False),
    ("kitchen", 25, ("mug", "frying pan", "kettle", "chef knife", "salad bowl", "teapot"),
     "material", ("ceramic", "stainless steel", "cast iron", "glass", "bamboo"), "colour", COLORS, False),
    ("beauty", 12, ("shampoo", "face cream", "lip balm", "hand soap", "serum", "body lotion"),
     "key ingredient", ("aloe", "argan oil", "charcoal", "shea butter", "vitamin c"), "scent",
     ("lavender", "rose", "citrus", "mint", "coconut", "unscented"), True),
    ("electronics", 70, ("headphones", "bluetooth speaker", "charger", "smartwatch", "keyboard"),
     "finish", ("aluminium", "matte plastic", "carbon fibre", "glass"), "colour", COLORS, False),
    ("grocery", 8, ("coffee beans", "loose leaf tea", "granola", "olive oil", "dark chocolate"),
     "sourcing", ("organic", "fair-trade", "single-origin", "wildflower"), "pack",
     ("250 g", "500 g", "1 kg", "family size", "travel size"), True),
    ("home decor", 30, ("table lamp", "vase", "cushion", "candle holder", "wall mirror", "rug"),
     "material", ("rattan", "velvet", "brass", "oak", "terracotta"), "colour", COLORS, False),
    ("toys", 20, ("jigsaw puzzle", "building set", "plush bear", "kite", "board game"),
     "material", ("wooden", "plush", "recycled plastic", "cardboard"), "colour", COLORS, False),
    ("sports", 28, ("yoga mat", "dumbbell", "water bottle", "tennis racket", "football"),
     "material", ("rubber", "neoprene", "steel", "foam", "nylon"), "colour", COLORS, False),
    ("pet supplies", 15, ("dog food", "cat litter", "cat treats", "chew toy", "pet bed"),
     "recipe", ("chicken", "salmon", "lamb", "natural", "hemp"), "life stage",
     ("puppy", "adult", "senior", "small breed", "large breed"), True),
    ("garden", 22, ("planter", "garden hose", "trowel", "bird feeder", "watering can"),
     "material", ("galvanised steel", "cedar", "recycled plastic", "clay"), "colour", COLORS, False),
    ("jewellery", 45, ("necklace", "ring", "bracelet", "earrings", "pendant"),
     "metal", ("silver", "gold-plated", "pearl", "titanium"), "finish", ("polished", "brushed", "hammered",
     "matte", "antique"), False),
    ("office", 14, ("notebook", "pen set", "desk organiser", "stapler", "backpack"),
     "material", ("recycled paper", "leather", "metal", "felt"), "colour", COLORS, False),
    ("outdoor", 55, ("tent", "sleeping bag", "camping lantern", "hiking poles", "rucksack"),
     "fabric", ("ripstop nylon", "down", "aluminium", "canvas"), "colour", COLORS, False),
)  # fmt: skip
_PREFIX = ("Nord", "Acme", "Bel", "Cor", "Dal", "Ever", "Fen", "Gal", "Hal", "Iso", "Jun", "Kal",
           "Lum", "Mar", "Nov", "Oak", "Pal", "Quin", "Ros", "Sol", "Tor", "Ulv", "Ver", "Wil",
           "Xan", "Yar", "Zen", "Alba", "Bri", "Cal", "Dun", "Elm")  # fmt: skip
_SUFFIX = ("vik", "ora", "ton", "ly", "wear", "co", "stone", "field", "ia", "ux", "mark",
           "haus", "ino", "era", "wood", "line", "craft", "ford", "ette", "smith")  # fmt: skip
# Choice model weights: how much each matched attribute, or similarity to the previous item in
# the session, adds to an item's utility (Gumbel noise has scale 1).
W_VARIANT, W_MATERIAL, W_STYLE, W_TIER = 1.4, 1.1, 0.9, 1.0
W_PREV_BRAND, W_PREV_KIND, W_NOVELTY = 1.2, 1.5, 1.0
CANDIDATES = 12  # popularity-sampled candidates per choice (sampling-importance-resampling)
CHUNK = 250_000  # sessions simulated at once (bounds memory at 10M events)


def generate(
    num_items: int = 2000,
    num_users: int = 1000,
    num_events: int = 60000,
    num_categories: int = 12,
    seed: int = 0,
) -> schema.Dataset:
    """Generates a shop log, deterministic in `seed`, with signal for text and sequence models.

    Items have a category, brand (with a price tier), kind, material, variant (colour, scent,
    ...) and style; title and description are written from them. Users prefer a few categories
    (drifting over the 180 days from 2024-01-01 UTC), a variant and material per category, a
    style and a brand tier; each choice samples popularity-weighted (Zipf) candidates and picks
    by those matches plus similarity to the previous item of the session. Sessions run a
    view -> cart -> purchase funnel; consumables are re-bought. 15% of items launch in the last
    15% of the range and 10% of users arrive late (cold start).

    Args:
        num_items: int. Catalog size. Defaults to 2000.
        num_users: int. Users generated (those with no event are left out). Defaults to 1000.
        num_events: int. Exact number of interactions. Defaults to 60000.
        num_categories: int. Categories (more than 14 reuse vocabularies). Defaults to 12.
        seed: int. Random seed. Defaults to 0.

    Returns:
        A schema.Dataset named `synthetic`; users carry a `segment` attribute.
    """
    for name, value in (("num_items", num_items), ("num_users", num_users),
                        ("num_events", num_events), ("num_categories", num_categories)):  # fmt: skip
        if int(value) < 1:
            raise errors.DataError(f"`{name}` must be >= 1, received {value!r}")
    num_categories = min(num_categories, num_items)
    rng = np.random.default_rng(seed)
    world = _catalog(rng, num_items, num_categories)
    people = _users(rng, num_users, num_categories, world)
    events = _events(rng, num_events, world, people)
    item_ids = _ids("i", num_items, rng)
    user_ids = _ids("u", num_users, rng)
    interactions = pd.DataFrame({
        "user_id": user_ids.take(events["user"]),
        "item_id": item_ids.take(events["item"]),
        "timestamp": events["ts"],
        "event_type": pd.array(schema.EVENT_TYPES[:3], dtype="str").take(events["type"]),
        "value": np.float32(1.0),
        "quantity": events["qty"],
        "price": world["price"][events["item"]],
    })  # fmt: skip
    items = pd.DataFrame({"item_id": item_ids, **world["text"], "price": world["price"]})
    active = np.unique(events["user"])
    users = pd.DataFrame({"user_id": user_ids.take(active),
                          "segment": np.asarray(SEGMENTS, dtype=object)[people["tier"][active]]})  # fmt: skip
    args = f"num_items={num_items}, num_users={num_users}, num_events={num_events}, "
    report = schema.CleaningReport(
        source=f"synthetic({args}num_categories={num_categories}, seed={seed})",
        rows_read=num_events,
        rows_kept=num_events,
        treatments={"generated": "Generated data: nothing to clean."},
    )
    return schema.Dataset("synthetic", interactions, items.sort_values("item_id"), users, report)


def write(ds: schema.Dataset, folder: os.PathLike | str) -> None:
    """Writes interactions.csv, items.csv, users.csv and report.json, each atomically.

    `csv_loader` reads them back with `CsvConfig(interactions="interactions.csv",
    catalog="items.csv", event_type="event_type", value="value", quantity="quantity",
    price="price", description="description", category="category")`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "interactions.csv": lambda f: ds.interactions.to_csv(f, index=False),
        "items.csv": lambda f: ds.items.to_csv(f, index=False),
        "users.csv": lambda f: ds.users.to_csv(f, index=False),
        "report.json": lambda f: f.write(json.dumps(ds.report.to_dict(), indent=2) + "\n"),
    }
    for name, writer in files.items():
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                writer(f)
            os.replace(tmp, folder / name)
        except BaseException:
            os.unlink(tmp)
            raise


def _ids(prefix: str, n: int, rng: np.random.Generator) -> pd.api.extensions.ExtensionArray:
    # Shuffled so that ids carry no hint of category or arrival order. Arrow-backed strings make
    # the 10M-row columns cheap to build and to conform.
    width = len(str(n - 1))
    return pd.array([f"{prefix}{k:0{width}d}" for k in rng.permutation(n)], dtype="str")


def _catalog(rng: np.random.Generator, n: int, num_cats: int) -> dict:
    """Item attributes (grouped by category), prices, launch times, popularity and text."""
    sizes = rng.multinomial(n - num_cats, rng.dirichlet(np.full(num_cats, 4.0))) + 1
    cat = np.repeat(np.arange(num_cats), sizes)
    start = np.concatenate([[0], np.cumsum(sizes)])
    specs = [CATEGORIES[c % len(CATEGORIES)] for c in range(num_cats)]
    n_kind = np.array([len(s[2]) for s in specs])
    n_mat = np.array([len(s[4]) for s in specs])
    n_var = np.array([len(s[6]) for s in specs])
    kind = (rng.random(n) * n_kind[cat]).astype(np.int64)
    mat = (rng.random(n) * n_mat[cat]).astype(np.int64)
    var = (rng.random(n) * n_var[cat]).astype(np.int64)
    style = rng.integers(len(STYLES), size=n)
    # Brands belong to one category; within it, brand popularity is Zipf-like.
    n_brand = np.clip(sizes // 30, 3, 60)
    brand_start = np.concatenate([[0], np.cumsum(n_brand)])
    brand = np.concatenate([
        brand_start[c] + rng.choice(n_brand[c], sizes[c], p=_zipf(n_brand[c], 1.0))
        for c in range(num_cats)
    ])  # fmt: skip
    tier = rng.choice(3, size=brand_start[-1], p=[0.35, 0.45, 0.2])[brand]
    base = np.array([s[1] for s in specs], dtype=float)
    kind_mult = rng.lognormal(0, 0.4, size=(num_cats, n_kind.max()))
    price = base[cat] * kind_mult[cat, kind] * TIER_MULT[tier] * rng.lognormal(0, 0.15, n)
    price = np.maximum(np.round(price) - 0.01, 0.99).astype(np.float32)
    # 60% on sale before the range, 25% launch during it, 15% in its last 15% (cold start).
    u = rng.random(n)
    frac = np.where(u < 0.85, (u - 0.6) / 0.25 * 0.85, 0.85 + (u - 0.85) / 0.15 * 0.145)
    launch = np.where(u < 0.6, START - 86400, START + (frac * SPAN).astype(np.int64))
    launch[start[:-1]] = START - 86400  # each category's first item is on sale from the start
    # Zipf popularity by a random rank within the category.
    pop = np.concatenate([_zipf(s, 0.9)[rng.permutation(s)] for s in sizes])
    # Candidate table: items repeated in proportion to popularity within their category, so a
    # uniform draw from a category's slice is a Zipf draw in one memory access.
    share = pop / np.bincount(cat, weights=pop)[cat]
    copies = np.floor(share * 8 * sizes[cat] + rng.random(n)).astype(np.int64)
    copies[start[:-1]] += 1  # no category is left without candidates
    table = np.repeat(np.arange(n), copies)
    table_start = np.concatenate([[0], np.cumsum(np.bincount(cat, weights=copies))]).astype(int)
    brands = pd.Series(pd.array(_brand_names(rng, brand_start[-1]), dtype="str").take(brand))
    text = _text(specs, cat, kind, mat, var, style, tier, brands)
    # All attributes the choice model compares, packed so a candidate costs one memory access.
    code = (var | mat << 8 | style << 16 | tier << 24 | kind << 32
            | (brand - brand_start[cat]) << 40 | cat.astype(np.int64) << 48)  # fmt: skip
    return dict(cat=cat, start=start, code=code, price=price, launch=launch, table=table,
                table_start=table_start, n_mat=n_mat, n_var=n_var,
                consumable=np.array([s[7] for s in specs])[cat], text=text)  # fmt: skip


def _brand_names(rng: np.random.Generator, n: int) -> np.ndarray:
    names = [p + s for p in _PREFIX for s in _SUFFIX]
    rng.shuffle(names)
    rounds = -(-n // len(names))
    return np.asarray([f"{a}{'' if r == 0 else ' ' + str(r + 1)}" for r in range(rounds)
                       for a in names][:n], dtype=object)  # fmt: skip


def _text(
    specs: list[tuple],
    cat: np.ndarray,
    kind: np.ndarray,
    mat: np.ndarray,
    var: np.ndarray,
    style: np.ndarray,
    tier: np.ndarray,
    brand: pd.Series,
) -> dict:
    """Title and description written from the attributes (Arrow string ops: fast at 1M items)."""

    def words(values, index=None) -> pd.Series:
        width = max(len(v) for v in values)
        lookup = [v[k] if k < len(v) else "" for v in values for k in range(width)]
        flat = cat * width + (0 if index is None else index)
        return pd.Series(pd.array(lookup, dtype="str").take(flat))

    kinds, mats = words([s[2] for s in specs], kind), words([s[4] for s in specs], mat)
    variants = words([s[6] for s in specs], var)
    first = words([tuple(x[:1].upper() + x[1:] for x in s[6]) for s in specs], var)
    mat_labels = words([(s[3].capitalize(),) for s in specs])
    var_labels = words([(s[5].capitalize(),) for s in specs])
    # Categories beyond the vocabularies reuse them under a numbered name ("kitchen 2").
    names = words([(s[0] + ("" if c < len(CATEGORIES) else f" {c // len(CATEGORIES) + 1}"),)
                   for c, s in enumerate(specs)])  # fmt: skip
    tiers = pd.Series(pd.array(["value", "everyday", "premium"], dtype="str").take(tier))
    styles = pd.Series(pd.array([x.capitalize() for x in STYLES], dtype="str").take(style))
    title = first + " " + mats + " " + kinds + " by " + brand
    description = (styles + " " + kinds + " from " + brand + "'s " + tiers + " " + names
                   + " range. " + mat_labels + ": " + mats + ". " + var_labels + ": "
                   + variants + ".")  # fmt: skip
    return {"title": title, "description": description, "category": names}


def _users(rng: np.random.Generator, n: int, num_cats: int, world: dict) -> dict:
    """Latent tastes: favourite categories (early and late), variant/material, style, tier."""
    slots = np.arange(3) % num_cats
    favs = rng.random((n, 2, num_cats), dtype=np.float32).argsort(axis=2)[:, :, slots]
    keep_early = rng.random(n) < 0.5  # half the users keep their top category when they drift
    favs[keep_early, 1, 0] = favs[keep_early, 0, 0]
    colour = rng.integers(len(COLORS), size=(n, 2))
    var = (rng.random((n, num_cats)) * world["n_var"]).astype(np.int8)
    colour_cats = np.array([CATEGORIES[c % len(CATEGORIES)][6] is COLORS for c in range(num_cats)])
    pick = colour[np.arange(n)[:, None], rng.integers(2, size=(n, num_cats))]
    var[:, colour_cats] = pick[:, colour_cats]
    u = rng.random(n)
    arrive = np.where(u < 0.7, 0.0, np.where(u < 0.9, (u - 0.7) / 0.2 * 0.85, 0.85 + (u - 0.9)))
    return dict(
        num_cats=num_cats, favs=favs, var=var, style=rng.integers(len(STYLES), size=n),
        mat=(rng.random((n, num_cats)) * world["n_mat"]).astype(np.int8),
        tier=rng.choice(3, size=n, p=[0.35, 0.45, 0.2]),
        arrive=START + (arrive * SPAN).astype(np.int64),
        weight=rng.lognormal(0, 1.0, n) * (1 - arrive),
    )  # fmt: skip


def _zipf(n: int, exponent: float) -> np.ndarray:
    w = np.arange(1, n + 1, dtype=float) ** -exponent
    return w / w.sum()


def _events(rng: np.random.Generator, target: int, world: dict, people: dict) -> dict:
    """Simulates sessions until `target` events exist, then thins whole sessions to hit it."""
    cum = np.cumsum(people["weight"])
    cum /= cum[-1]
    parts, total, sessions, per_session = [], 0, 0, 4.0
    while total < target:
        todo = int((target - total) / per_session * 1.1) + 8
        for lo in range(0, todo, CHUNK):
            part = _simulate(rng, min(CHUNK, todo - lo), world, people, cum)
            part["sid"] += sessions
            sessions = int(part["sid"].max()) + 1
            total += len(part["ts"])
            parts.append(part)
        per_session = total / sessions
    ev = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    # Random session order; whole sessions are kept until the target (the last is cut short).
    order = np.lexsort((ev["ts"], rng.random(sessions)[ev["sid"]]))[:target]
    order = order[np.argsort(ev["ts"][order], kind="stable")]
    return {k: v[order] for k, v in ev.items() if k != "sid"}


def _simulate(rng: np.random.Generator, n: int, world: dict, people: dict, cum: np.ndarray) -> dict:
    """`n` sessions: a view sequence, carts among the views, purchases among the carts."""
    end = START + SPAN
    user = np.minimum(np.searchsorted(cum, rng.random(n)), len(cum) - 1)
    arrive = people["arrive"][user]
    t = arrive + (rng.random(n) * (end - arrive)).astype(np.int64)
    length = np.minimum(rng.geometric(0.3, n), 20)
    cat = _category(rng, people, user, t)
    prev = np.full(n, -1)
    out: list[tuple] = []
    bought: list[tuple] = []
    for k in range(int(length.max())):
        a = np.flatnonzero(length > k)
        if k:  # sessions mostly stay in one category
            move = a[rng.random(len(a)) < 0.15]
            cat[move] = _category(rng, people, user[move], t[move])
        item, matches = _choose(rng, world, people, user[a], cat[a], t[a], prev[a] if k else None)
        prev[a] = item
        out.append((user[a], item, t[a], 0, 1, a))
        # Better-matching items are carted more often; about half of the carts are bought.
        cart = rng.random(len(a)) < 0.03 + 0.05 * matches
        qty = 1 + world["consumable"][item] * (rng.geometric(0.6, len(a)) - 1)
        out.append((user[a][cart], item[cart], t[a][cart] + rng.integers(10, 90), 1, qty[cart],
                    a[cart]))  # fmt: skip
        buy = cart & (rng.random(len(a)) < 0.45)
        bought.append((a[buy], item[buy], qty[buy]))
        t[a] += 5 + rng.exponential(45, len(a)).astype(np.int64)
    s, item, qty = (np.concatenate(x) for x in zip(*bought, strict=True))
    ts = t[s] + rng.integers(30, 300, len(s))
    out.append((user[s], item, ts, 2, qty, s))
    # Consumables are re-bought after a few weeks: view -> cart -> purchase, new session each.
    u, sid = user[s], n
    again = world["consumable"][item]
    u, item, ts, qty = u[again], item[again], ts[again], qty[again]
    while len(u):
        ts = ts + rng.gamma(4.0, 25 * 86400 / 4, len(u)).astype(np.int64)
        again = (rng.random(len(u)) < 0.55) & (ts < end - 600)
        u, item, ts, qty = u[again], item[again], ts[again], qty[again]
        ids = sid + np.arange(len(u))
        sid += len(u)
        for etype, delay in ((0, 0), (1, 40), (2, 200)):
            out.append((u, item, ts + delay, etype, qty, ids))
    cols = [np.concatenate([np.broadcast_to(x[i], len(x[0])) for x in out]) for i in range(6)]
    return {
        "user": cols[0].astype(np.int64),
        "item": cols[1].astype(np.int64),
        "ts": np.minimum(cols[2], end - 1).astype(np.int64),
        "type": cols[3].astype(np.int8),
        "qty": cols[4].astype(np.float32),
        "sid": cols[5].astype(np.int64),
    }


def _category(
    rng: np.random.Generator, people: dict, user: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """A category from the user's favourites, drifting from early to late ones over the range."""
    favs = people["favs"]
    late = (rng.random(len(user)) < (t - START) / SPAN).astype(np.int64)
    slot = np.searchsorted([0.6, 0.85], rng.random(len(user)), side="right")
    cat = favs[user, late, slot].astype(np.int64)
    explore = rng.random(len(user)) < 0.1
    cat[explore] = rng.integers(people["num_cats"], size=explore.sum())
    return cat


def _choose(
    rng: np.random.Generator,
    world: dict,
    people: dict,
    user: np.ndarray,
    cat: np.ndarray,
    t: np.ndarray,
    prev: Optional[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Picks one of CANDIDATES popularity-sampled items by attribute match, recency and noise."""
    m = len(user)
    start = world["start"]
    lo, hi = world["table_start"][cat], world["table_start"][cat + 1]
    draw = (rng.random((m, CANDIDATES)) * (hi - lo)[:, None]).astype(np.int64)
    cand = world["table"][lo[:, None] + draw]
    code = world["code"][cand]
    var = (code & 0xFF) == people["var"][user, cat][:, None]
    mat = (code >> 8 & 0xFF) == people["mat"][user, cat][:, None]
    style = (code >> 16 & 0xFF) == people["style"][user][:, None]
    tier = (code >> 24 & 0xFF) == people["tier"][user][:, None]
    score = W_VARIANT * var + W_MATERIAL * mat + W_STYLE * style + W_TIER * tier
    if prev is not None:
        before = world["code"][prev][:, None]
        same_brand = (code >> 40) == (before >> 40)  # brands belong to one category
        same_kind = ((code >> 32 & 0xFF) == (before >> 32 & 0xFF)) & (
            (code >> 48) == (before >> 48)
        )
        score += W_PREV_BRAND * same_brand + W_PREV_KIND * same_kind
    launch = world["launch"][cand]
    age = t[:, None] - launch
    score += W_NOVELTY * (launch > START) * np.exp(-np.maximum(age, 0) / (14 * 86400))
    score += rng.gumbel(size=score.shape)
    score[age < 0] = -np.inf  # not launched yet
    rows = np.arange(m)
    best = score.argmax(axis=1)
    item = cand[rows, best]
    none = np.isneginf(score[rows, best])
    item[none] = start[cat[none]]
    matches = (var.astype(np.int64) + mat + style + tier)[rows, best]
    return item, matches
