"""Author features, as the study's models used them.

``user_stats``: for each post's author, the share of the author's *other* posts in the
dataset that carry each label (child: any child, baby, toddler, elementary, middle, high;
place: daycare, park, home, school, neighborhood, indoor, outdoor; health: negative,
positive, cognitive, physical, emotional). The post itself is left out, so its own label
never leaks into its features; an author with no other post gets zeros (and
``user_posts`` = 0 says so).

``vectors``: author embeddings the user supplies (Parquet with an ``author`` column and a
list column ``vector`` or numeric columns; or an ``.npz`` with arrays ``authors`` and
``vectors``), joined by author; zeros with ``vectors_mask`` = 0 when an author has none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import chain
from operator import methodcaller
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainset import codebook

if TYPE_CHECKING:
    import numpy as np

# The study's order of each family's author statistics, by study-layout slot name.
USER_STATS: dict[str, tuple[str, ...]] = {
    "child": ("any_child", "baby", "toddler", "elementary", "middle", "high"),
    "place": ("daycare", "park", "home", "school", "neighborhood", "indoor", "outdoor"),
    "health": ("negative", "positive", "cognitive", "physical", "emotional_social"),
}


def user_stats(family: str,
               rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[list[float], int]]:
    """``{post_id: (shares, other_posts)}`` from rows with ``post_id``, ``author`` and
    ``study_labels`` (the study's layout), leaving each post out of its own figures."""
    slots = [s.name for s in codebook.family(family).study_slots]
    picks = [slots.index(name) for name in USER_STATS[family]]
    totals: dict[str, list[int]] = defaultdict(lambda: [0] * len(picks))
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        author = row.get("author")
        if author:
            labels = row["study_labels"]
            total = totals[author]
            for k, slot in enumerate(picks):
                total[k] += int(labels[slot])
            counts[author] += 1
    out: dict[str, tuple[list[float], int]] = {}
    for row in rows:
        author = row.get("author")
        others = counts.get(author, 0) - 1 if author else 0
        if others <= 0:
            out[str(row["post_id"])] = ([0.0] * len(picks), 0)
            continue
        own = row["study_labels"]
        shares = [(totals[author][k] - int(own[slot])) / others for k, slot in enumerate(picks)]
        out[str(row["post_id"])] = (shares, others)
    return out


def user_stats_columns(family: str, rows: Sequence[Mapping[str, Any]],
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``user_stats`` for each row as arrays: shares (N, statistics) and other posts (N,),
    the same figures computed with numpy (each row's own figures; ``user_stats`` keys them
    by post id)."""
    import numpy as np

    slots = [s.name for s in codebook.family(family).study_slots]
    picks = [slots.index(name) for name in USER_STATS[family]]
    n = len(rows)
    authors = list(map(methodcaller("get", "author"), rows))
    if not any(authors):  # nobody's other posts: zeros
        return np.zeros((n, len(picks)), np.float64), np.zeros(n, np.int64)
    lists = [row["study_labels"] for row in rows]
    if n and set(map(len, lists)) != {len(slots)}:  # not one label per slot: row by row
        stats = user_stats(family, rows)
        per_row = [stats[str(row["post_id"])] for row in rows]
        return (np.array([s for s, _ in per_row], np.float64).reshape(n, len(picks)),
                np.array([o for _, o in per_row], np.int64))
    labels = np.fromiter(chain.from_iterable(lists), np.int64, count=n * len(slots))
    own = labels.reshape(n, len(slots))[:, picks]
    codes: dict[Any, int] = {}
    author = np.fromiter((codes.setdefault(a, len(codes)) if a else -1 for a in authors),
                         np.int64, count=n)
    known = author >= 0
    counts = np.bincount(author[known], minlength=len(codes) + 1)  # never empty
    totals = np.zeros((len(codes), len(picks)), np.int64)
    np.add.at(totals, author[known], own[known])
    others = np.where(known, counts[np.maximum(author, 0)] - 1, 0)
    shares = np.zeros((n, len(picks)), np.float64)
    has = others > 0
    shares[has] = (totals[author[has]] - own[has]) / others[has][:, None]
    return shares, np.where(has, others, 0)


def vector_columns(vectors: Mapping[str, Sequence[float]], size: int,
                   rows: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Each row's author vector (N, size), zeros where the author has none, and the mask
    (N,) saying which rows had one (joined by ``str(author)``, as the records always were)."""
    import numpy as np

    found = [vectors.get(str(row.get("author"))) for row in rows]
    mask = np.fromiter((v is not None for v in found), bool, count=len(found))
    matrix = np.zeros((len(found), size), np.float64)
    if mask.any():
        matrix[mask] = np.array([v for v in found if v is not None], np.float64)
    return matrix, mask


class VectorFileError(ValueError):
    """The author vectors file cannot be used; the message says why and where."""


def load_vectors(path: Path) -> dict[str, list[float]]:
    """Author embeddings from a Parquet or ``.npz`` file, all of one length."""
    import numpy as np

    if not path.is_file():
        raise VectorFileError(f"{path}: no such file")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if "authors" not in data or "vectors" not in data:
                raise VectorFileError(f"{path}: needs arrays 'authors' and 'vectors'")
            authors, vectors = data["authors"], data["vectors"]
        if vectors.ndim != 2 or len(authors) != len(vectors):
            raise VectorFileError(f"{path}: 'vectors' must be one row per author")
        table = {str(a): [float(v) for v in row] for a, row in zip(authors, vectors, strict=True)}
    elif path.suffix == ".parquet":
        import pandas as pd

        frame = pd.read_parquet(path)
        if "author" not in frame.columns:
            raise VectorFileError(f"{path}: needs an 'author' column")
        if "vector" in frame.columns:
            table = {str(a): [_number(x, path, a) for x in v]
                     for a, v in zip(frame["author"], frame["vector"], strict=True)}
        else:
            numeric = [c for c in frame.columns if c != "author"]
            table = {str(a): [_number(x, path, a) for x in row] for a, row in
                     zip(frame["author"], frame[numeric].to_numpy(), strict=True)}
    else:
        raise VectorFileError(f"{path}: author vectors must be .parquet or .npz")
    sizes = {len(v) for v in table.values()}
    if len(sizes) > 1:
        raise VectorFileError(f"{path}: vectors of different lengths {sorted(sizes)}")
    if not table or not sizes or sizes == {0}:
        raise VectorFileError(f"{path}: no author vectors")
    for author, vector in table.items():
        for x in vector:
            _number(x, path, author)
    return table


def _number(value: Any, path: Path, author: Any) -> float:
    """A finite float, or the file is refused naming the author."""
    import math

    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise VectorFileError(f"{path}: author {author} has a vector with NaN, infinity or "
                              "a missing value")
    return number
