"""Local export files behind signed, expiring links (trainset.local.downloads)."""

from urllib.parse import parse_qs, urlsplit

from trainset.local.downloads import LocalExportFiles


def make(tmp_path):
    root = tmp_path / "exports"
    (root / "job-1" / "child").mkdir(parents=True)
    (root / "job-1" / "child" / "child_labels.csv").write_text("post_id\np1\n")
    (root / "job-1" / "summary.json").write_text("{}")
    (root / ".job-2-partial" / "child").mkdir(parents=True)  # a copy in progress
    (root / ".job-2-partial" / "child" / "x.csv").write_text("x")
    (tmp_path / "token_secret").write_text("do not serve")
    return LocalExportFiles(root, "secret-one", link_seconds=60)


def link_parts(url):
    split = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(split.query).items()}
    return split.path[len("/files/"):], query["expires"], query["signature"]


def test_listing_sizes_and_links(tmp_path):
    files = make(tmp_path)
    assert files.list("exports/job-1/") == ["exports/job-1/child/child_labels.csv",
                                            "exports/job-1/summary.json"]
    assert files.list("exports/job-2") == []  # copies in progress are hidden
    assert files.size("exports/job-1/child/child_labels.csv") == 11
    assert files.size("exports/nope") is None
    key, expires, signature = link_parts(files.url("exports/job-1/summary.json", now=1000))
    assert key == "exports/job-1/summary.json" and expires == "1060"
    assert files.open(key, expires, signature, now=1059).read_text() == "{}"


def test_links_expire_and_cannot_be_forged(tmp_path):
    files = make(tmp_path)
    key, expires, signature = link_parts(files.url("exports/job-1/summary.json", now=1000))
    assert files.open(key, expires, signature, now=1061) is None  # expired
    assert files.open("exports/job-1/child/child_labels.csv", expires, signature, now=1000) is None
    assert files.open(key, "1061", signature, now=1000) is None
    assert files.open(key, expires, "0" * 64, now=1000) is None
    assert files.open(key, "soon", signature, now=1000) is None
    other = LocalExportFiles(files.root, "secret-two")
    assert other.open(key, expires, signature, now=1000) is None
    # Keys outside the exports folder never resolve, even with a genuine signature.
    for outside in ("token_secret", "exports/../token_secret", "exports/../../etc/passwd"):
        k, e, s = link_parts(files.url(outside, now=1000))
        assert files.open(k, e, s, now=1000) is None
