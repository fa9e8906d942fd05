"""Author features: each post's author statistics leave the post itself out; author vectors
are joined by author with a mask, and a bad vectors file is refused with the reason."""

import numpy as np
import pandas as pd
import pytest

from trainset import codebook
from trainset.export.author_features import USER_STATS, VectorFileError, load_vectors, user_stats

TODDLER = {"is_child": True, "age": [codebook.AGE_TODDLER]}
NO_CHILD = {"is_child": False}


def row(post_id, author, answers):
    return {"post_id": post_id, "author": author, **codebook.label_columns("child", answers)}


def test_shares_leave_the_post_itself_out():
    rows = [row("a1", "ann", TODDLER), row("a2", "ann", TODDLER), row("a3", "ann", NO_CHILD),
            row("b1", "bob", TODDLER), row("c1", None, TODDLER)]
    stats = user_stats("child", rows)
    order = USER_STATS["child"]  # any_child, baby, toddler, elementary, middle, high
    any_child, toddler = order.index("any_child"), order.index("toddler")
    shares, others = stats["a1"]
    assert others == 2 and shares[any_child] == pytest.approx(0.5)  # a2 yes, a3 no
    assert shares[toddler] == pytest.approx(0.5)
    shares, others = stats["a3"]
    assert others == 2 and shares[any_child] == pytest.approx(1.0)  # a1 and a2, not itself
    assert stats["b1"] == ([0.0] * 6, 0)  # no other post: zeros, and the count says so
    assert stats["c1"] == ([0.0] * 6, 0)  # no author


def test_every_family_names_its_statistics_from_the_study_layout():
    for family, names in USER_STATS.items():
        slots = [s.name for s in codebook.family(family).study_slots]
        assert set(names) <= set(slots), family


def test_vectors_from_parquet_and_npz(tmp_path):
    pd.DataFrame({"author": ["ann", "bob"], "vector": [[1.0, 2.0], [3.0, 4.0]]}).to_parquet(
        tmp_path / "v.parquet")
    assert load_vectors(tmp_path / "v.parquet") == {"ann": [1.0, 2.0], "bob": [3.0, 4.0]}
    pd.DataFrame({"author": ["ann"], "v0": [0.5], "v1": [0.25]}).to_parquet(
        tmp_path / "w.parquet")
    assert load_vectors(tmp_path / "w.parquet") == {"ann": [0.5, 0.25]}
    np.savez(tmp_path / "v.npz", authors=np.array(["ann"]), vectors=np.array([[1.0, 0.0]]))
    assert load_vectors(tmp_path / "v.npz") == {"ann": [1.0, 0.0]}


def test_bad_vector_files_are_refused_with_the_reason(tmp_path):
    pd.DataFrame({"author": ["a", "b"], "vector": [[1.0], [1.0, 2.0]]}).to_parquet(
        tmp_path / "ragged.parquet")
    pd.DataFrame({"author": ["a"], "vector": [[float("nan")]]}).to_parquet(
        tmp_path / "nan.parquet")
    pd.DataFrame({"name": ["a"], "vector": [[1.0]]}).to_parquet(tmp_path / "noauthor.parquet")
    (tmp_path / "v.csv").write_text("author,v\na,1\n")
    for name, reason in (("ragged.parquet", "different lengths"), ("nan.parquet", "NaN"),
                         ("noauthor.parquet", "'author' column"), ("v.csv", ".parquet or .npz"),
                         ("missing.npz", "no such file")):
        with pytest.raises(VectorFileError, match=reason):
            load_vectors(tmp_path / name)
