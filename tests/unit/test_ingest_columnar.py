"""The columnar reader (pyarrow blocks, vectorized checks) against the row reader and checker.

``trainset.corpus.ingest`` reads and checks one row at a time and defines the import's answers;
``trainset.corpus.columnar`` must give exactly the same posts and the same rejects (file, line,
reason, id, raw) for every file, the malformed ones above all. Each test writes a file and
compares both readers; small blocks make rows, duplicates and multi-line records straddle
block boundaries.
"""

import json
import os
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from trainset.corpus import columnar
from trainset.corpus.ingest import FileProblem, FirstIdWins, Reject, check_row, read_rows

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HEADER = "id,text,keyword,family,created_at,image_url,author,lang\n"


def micros(when):
    """A time as microseconds since 1970 (pyarrow's timestamps; year 1 minus an offset too)."""
    return None if when is None else (when - EPOCH) // timedelta(microseconds=1)


def by_rows(path, max_text):
    """The row reader's answers, as the import used them: posts (first id wins) and rejects."""
    seen, posts, rejects = FirstIdWins(), [], []
    for raw in read_rows(path):
        checked = check_row(raw, max_text)
        if not isinstance(checked, Reject):
            checked = seen.check(checked, raw) or checked
        if isinstance(checked, Reject):
            rejects.append(checked)
        else:
            posts.append((raw.line, checked.id, checked.text, checked.image_key,
                          checked.keyword, checked.family, checked.author,
                          micros(checked.created_at), checked.text_hash, checked.extra))
    return posts, rejects


def by_blocks(path, max_text):
    posts, rejects, rows = [], [], 0
    for block in columnar.read_checked(path, max_text):
        rows += block.rows
        assert block.posts.schema == columnar.POSTS_SCHEMA
        table = block.posts.set_column(6, "created_at", block.posts["created_at"].cast("int64"))
        posts += [(p["line"], p["id"], p["text"], p["image_key"], p["keyword"], p["family"],
                   p["author"], p["created_at"], p["text_hash"], json.loads(p["extra"]))
                  for p in table.to_pylist()]
        rejects += block.rejects
    assert rows == len(list(read_rows(path)))  # rows read: every row but blank lines
    return posts, rejects


def same(path, max_text=200):
    """Both readers agree on the file; returns (posts, rejects) for further checks."""
    expected = by_rows(path, max_text)
    got = by_blocks(path, max_text)
    assert got[1] == expected[1]
    assert got[0] == expected[0]
    return expected


@pytest.fixture(params=[64, 1 << 20], ids=["tiny-blocks", "big-blocks"])
def block_bytes(request, monkeypatch):
    monkeypatch.setattr(columnar, "BLOCK_BYTES", request.param)
    monkeypatch.setattr(columnar, "PARQUET_ROWS", 3 if request.param < 1000 else 50_000)
    return request.param


def test_white_space_is_pythons():
    """pyarrow trims the characters str.strip() and str.split() take as white space."""
    assert set(columnar.WHITESPACE) == {chr(c) for c in range(0x110000) if chr(c).isspace()}


def test_ordinary_rows_are_never_checked_one_by_one(tmp_path, monkeypatch):
    """The speed is in the columns: rows of the usual kinds never reach check_row."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    monkeypatch.setattr(columnar, "BLOCK_BYTES", 1 << 12)
    monkeypatch.setattr(columnar, "check_row", lambda *a: pytest.fail("checked by row"))
    rows = [{"id": f"{i}", "text": f'Post "{i}", with\nwords  é', "keyword": "kw",
             "family": "child", "created_at": "2022-03-01T10:00:00Z", "lang": "en",
             "author": f"u{i}"} for i in range(500)]
    rows[7]["created_at"] = "Wed Oct 10 20:19:24 +0000 2018"
    rows[8]["created_at"] = "2022-03-01 10:00:00"
    csv_path = tmp_path / "posts.csv"
    pa_csv.write_csv(pa.Table.from_pylist(rows), csv_path)
    jsonl_path = tmp_path / "posts.jsonl"
    jsonl_path.write_text("".join(json.dumps(r | {"id": i}) + "\n" for i, r in enumerate(rows)))
    parquet_path = tmp_path / "posts.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet_path)
    for path in (csv_path, jsonl_path, parquet_path):
        assert sum(b.posts.num_rows for b in columnar.read_checked(path)) == 500


def test_every_reject_reason_of_the_row_test(tmp_path, block_bytes):
    path = tmp_path / "posts.csv"
    rows = [
        '1,"A toddler, at the park",toddler,child,2022-03-01T10:00:00Z,https://x/i.jpg,ann,en',
        "2,,toddler,child,,,,",
        ',"no id",kid,child,,,,',
        '3,"bad date",kid,child,yesterday,,,',
        '4,"fam",kid,pets,,,,',
        '5,"multi\nline text",kid,child,Wed Oct 10 20:19:24 +0000 2018,,,',
        "6,short",
        f'7,"{"x" * 201}",kid,child,,,,',
        f'{"9" * 65},"long id",kid,child,,,,',
    ]
    path.write_bytes((HEADER + "\n".join(rows) + "\n").encode() +
                     b'8,"bad \xff byte",kid,child,,,,\n')
    posts, rejects = same(path)
    assert [p[1] for p in posts] == ["1", "5"]
    assert [r.line for r in rejects] == [3, 4, 5, 6, 9, 10, 11, 12]


def test_quoted_line_breaks_count_from_the_record_start(tmp_path, block_bytes):
    path = tmp_path / "breaks.csv"
    path.write_bytes(
        b'id,text,"key\nword"\r\n'  # a header over two lines
        b'a1,"one\r\ntwo\rthree\nfour",kw\r\n'
        b'a2,"he said ""hi""\n\n",kw\r\n'
        b'\r\n'
        b'   \r\n'
        b',,\r\n'
        b'a3,"x",kw,extra\r\n'
        b'a4,"last ""quoted"" ,comma",kw\r'
        b'a5,plain,kw'
    )
    same(path)
    text = tmp_path / "text.csv"
    text.write_text('id,text\nb1,"line\nbreak"\nb2,"and\r\nanother"\nb3,ok\nb4,"x""y"\n')
    posts, _ = same(text)
    assert [(p[0], p[1]) for p in posts] == [(2, "b1"), (4, "b2"), (6, "b3"), (7, "b4")]


def test_ids_texts_families_and_blank_rows(tmp_path, block_bytes):
    path = tmp_path / "ids.csv"
    rows = [
        "  p1  ,padded id,kw,child,,,,",
        "\u3000p2\u3000,ideographic spaces,kw,child,,,,",
        "é3,non-ascii id,kw,child,,,,",
        f"{'é' * 64},64 accented,kw,child,,,,",
        f"{'é' * 65},65 accented,kw,child,,,,",
        "   ,spaces only id,kw,child,,,,",
        "p4,   ,kw,child,,,,",
        "p5,\u00a0\u2003,kw,child,,,,",
        'p6,"tab\there  and  double",kw, child ,,,,',
        "p7, leading and trailing ,kw,CHILD,,,,",
        "p8,Ünïcödé ＴＥＸＴ ß,kw,health,,,,",
        'p9,"nul \x00 inside",kw,,,,,',
        f"p10,{'é' * 200},kw,,,,,",
        f"p11,{'é' * 201},kw,,,,,",
        "p12,text,,,,,,",
        ",,,,,,,",
        "  ,  ,  ,,,,,",
        "p13,keyword spaces,  kw  ,place,, https://img ,  al  ,",
        "p14,image key wins,kw,place,,,,",
    ]
    path.write_text(HEADER.replace("image_url", "image_key").replace("lang", "image_url") +
                    "\n".join(rows) + "\n", encoding="utf-8")
    posts, rejects = same(path)
    assert "p13" in {p[1] for p in posts} and len(rejects) >= 6


def test_dates_in_every_form(tmp_path, block_bytes):
    dates = [
        "2022-03-01T10:00:00Z", "2022-03-01 10:00:00", "2022-03-01T10:00:00.5Z",
        "2022-03-01T10:00:00.123456+05:30", "2022-03-01T10:00:00-08:00", "2022-03-01",
        "2022-02-30T10:00:00Z", "2022-03-01T24:00:00Z", "2022-03-01T10:00:60Z",
        "1850-01-01T00:00:00Z", "0001-01-01T00:00:00+05:00", "20220301T100000",
        "Wed Oct 10 20:19:24 +0000 2018", "Wed Oct 10 20:19:24 -0530 2018",
        "wed oct 10 20:19:24 +0000 2018", "Wed Feb 30 20:19:24 +0000 2018",
        "Wed, 10 Oct 2018 20:19:24 +0000", "  2022-03-01T10:00:00Z  ", "yesterday", "1650000000",
        "2022-03-01T10:00:00.1234567Z", "2022-03-01T10:00Z", "2022-13-01T10:00:00Z",
    ]
    path = tmp_path / "dates.csv"
    path.write_text("id,text,created_at\n" +
                    "".join(f'd{i},post {i},"{d}"\n' for i, d in enumerate(dates)))
    posts, rejects = same(path)
    assert len(posts) > 10 and any(r.reason.startswith("bad created_at") for r in rejects)
    # a block whose every date is an invalid day still reads the good rows' dates
    invalid = tmp_path / "invalid.csv"
    invalid.write_text("id,text,created_at\ne1,a,2022-02-30T10:00:00Z\ne2,b,2022-03-01\n")
    same(invalid)


def test_extra_columns_are_the_row_checkers_json(tmp_path, block_bytes):
    path = tmp_path / "extra.csv"
    path.write_text(
        'id,text,geo,note,geo,empty\n'
        'x1,a,first,"say ""hi"" \\ back",second,\n'
        'x2,b,,"tab\there",,\n'
        'x3,c,only first,ünï,,  \n'
        'x4,d,,,,\n',
        encoding="utf-8")
    posts, _ = same(path)
    assert posts[0][-1] == {"geo": "second", "note": 'say "hi" \\ back'}


def test_duplicates_keep_the_first_across_blocks(tmp_path, block_bytes):
    path = tmp_path / "dups.csv"
    lines = ["id,text"]
    for i in range(300):
        lines.append(f"id{i % 120},text number {i}")
        if i % 50 == 0:
            lines.append(f'id{i % 7},"multi\nline {i}"')
    lines.append(",no id so not a duplicate")
    path.write_text("\n".join(lines) + "\n")
    posts, rejects = same(path)
    assert len(posts) == 120
    first = next(r for r in rejects if r.reason.startswith("duplicate"))
    assert first.reason == "duplicate id (also at line 2 of this file, which is kept)"


def test_bad_bytes_and_broken_quoting_fall_back_mid_file(tmp_path, block_bytes):
    good = "".join(f"g{i},good row {i}\n" for i in range(200))
    cases = {
        "bad_byte_good_row.csv": b"id,text\n" + good.encode() + b'b1,"bad \xff"\n' +
        good.replace("g", "h").encode(),
        "bad_byte_short_row.csv": b"id,text,kw\n" + good.encode() + b'b2\xfe\n' +
        good.replace("g", "h").encode(),
        "open_quote.csv": b"id,text\n" + good.encode() + b'q1,"never closed\n' +
        good.replace("g", "h").encode(),
        "long_record.csv": b"id,text\n" + good.encode() + b'l1,"' + b"line\n" * 40 + b'"\n' +
        good.replace("g", "h").encode(),
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        same(path, max_text=1000)


def test_a_file_of_mostly_short_rows(tmp_path, block_bytes):
    """Past a thousand records of the wrong width, most of them, the rest is read the row
    way; nothing is lost or read twice at the switch."""
    rng = random.Random(3)
    path = tmp_path / "short.csv"
    path.write_text("id,text,kw\n" + "".join(
        f"{i},text {i}\n" if rng.random() < 0.6 else f'{i},"text\n{i}",kw\n'
        for i in range(6000)))
    posts, rejects = same(path)
    assert len(posts) + len(rejects) == 6000 and len(rejects) > 3000


def test_bom_and_empty_files_and_missing_columns(tmp_path, block_bytes):
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfid,text\nz1,with a byte-order mark\n")
    assert same(bom)[0][0][1] == "z1"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert list(columnar.read_checked(empty)) == []
    only_header = tmp_path / "header.csv"
    only_header.write_text("id,text\n")
    same(only_header)
    for content, message in [("id,body\n1,hi\n", "no 'text' column"),
                             ("\nid,text\n", "no 'id' or 'text' column")]:
        path = tmp_path / "missing.csv"
        path.write_text(content)
        with pytest.raises(FileProblem, match=message):
            list(columnar.read_checked(path))
    with pytest.raises(FileProblem, match="unknown file type"):
        list(columnar.read_checked(tmp_path / "a.xlsx"))
    broken = tmp_path / "b.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(FileProblem, match="not a readable Parquet"):
        list(columnar.read_checked(broken))


def test_jsonl(tmp_path, block_bytes):
    plain = tmp_path / "plain.jsonl"
    plain.write_text("".join(
        json.dumps({"id": i, "text": f"post {i}", "keyword": "kw", "likes": i % 3,
                    "lang": "en", "verified": i % 2 == 0}) + "\n" for i in range(100)))
    same(plain)
    messy = tmp_path / "messy.jsonl"
    messy.write_bytes(
        b'{"id": 10, "text": "json post", "family": "health", "likes": 3}\n'
        b'{"id": 11\n[1, 2]\n\n   \n'
        b'{"id": "12", "text": "ok", "created_at": 1650000000}\n'
        b'{"id": "13", "text": "\xff"}\n'
        b'{"id": 14, "text": "crlf"}\r\n'
        b' {"id": 15, "text": "leading space"}\n'
        b'{"id": 16, "text": "x", "geo": {"lat": 1.5}}\n'
        b'{"id": 17, "text": "y", "score": 0.5}\n'
        b'{"id": 18, "text": "z", "score": 1}\n'
        b'{"id": 19, "text": "dup key", "text": "second"}\n'
        b'{"id": 123456789012345678901234, "text": "big int"}\n'
        b'{"id": 20, "text": 7}\n'
        b'{"id": 21, "text": "two"} {"id": 22, "text": "objects"}\n'
        b'{"id": 10, "text": "a duplicate"}\n'
        b'{"id": "", "text": "no id"}\n'
        b'{"id": true, "text": "bool id"}\n'
        b'{"id": 23, "text": "quotes \\" and \\\\ and \\u00e9 \\ud83d\\ude00", "n": "a\\tb"}\n'
        b'{"id": 24, "text": "last line without a newline"}'
    )
    posts, rejects = same(messy)
    assert "10" in {p[1] for p in posts} and any(r.line == 15 for r in rejects)
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b'\xef\xbb\xbf{"id": 1, "text": "bom"}\n{"id": 2, "text": "after"}\n')
    same(bom)


def test_parquet_types(tmp_path, block_bytes):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 12
    base = datetime(2021, 5, 1, 12, 30, tzinfo=UTC)
    tables = {
        "strings": pa.table({
            "id": [f"p{i}" if i != 3 else None for i in range(n)],
            "text": [f"hello  {i}" if i != 4 else None for i in range(n)],
            "keyword": pa.array([f"kw{i % 2}" for i in range(n)]).dictionary_encode(),
            "created_at": [base + timedelta(hours=i) if i % 3 else None for i in range(n)],
            "retweets": list(range(n)),
            "score": [i / 3 for i in range(n)],
            "tags": [["a", "b"] if i % 2 else [] for i in range(n)],
            "note": pa.array([f"n{i}" if i % 4 else "" for i in range(n)], pa.large_string()),
        }),
        "int_ids_naive_times": pa.table({
            "id": list(range(100, 100 + n)),
            "text": pa.array([f"t{i}" for i in range(n)], pa.large_string()),
            "created_at": pa.array([datetime(2020, 1, 1) + timedelta(days=i) for i in range(n)],
                                   pa.timestamp("ms")),
        }),
        "zoned_times": pa.table({
            "id": [f"z{i}" for i in range(n)],
            "text": ["x"] * n,
            "created_at": pa.array([base.astimezone(timezone(timedelta(hours=-5)))] * n,
                                   pa.timestamp("us", "America/New_York")),
        }),
        "nanoseconds_and_floats": pa.table({
            "id": [float(i) for i in range(n)],
            "text": ["x"] * n,
            "created_at": pa.array([base] * n, pa.timestamp("ns", "UTC")),
        }),
        "string_times": pa.table({
            "id": [f"s{i % 5}" for i in range(n)],
            "text": ["x"] * n,
            "created_at": ["2022-03-01T10:00:00Z", "bad"] * (n // 2),
        }),
    }
    for name, table in tables.items():
        path = tmp_path / f"{name}.parquet"
        pq.write_table(table, path)
        same(path)


def test_text_hash_paths(tmp_path, block_bytes):
    texts = ["Plain ASCII Text", "  leading", "trailing  ", "double  space", "tab\tinside",
             "new\nline", "\x1cfile separator", "Straße", "ＦＵＬＬ width", "e\u0301 combining",
             "İstanbul", "ǅ titlecase", "a\u2028b", "x\x0by", "ok", "UPPER lower MiXeD"]
    path = tmp_path / "hash.csv"
    path.write_text("id,text\n" + "".join(f'h{i},"{t}"\n' for i, t in enumerate(texts)),
                    encoding="utf-8")
    same(path)


RANDOM_FILES = int(os.environ.get("TRAINSET_RANDOM_FILES", "12"))  # more: a longer search
PIECES = ["a", "B", " ", "  ", "\t", ",", '"', '""', "\n", "\r\n", "\r", "é", "😀", "\u3000",
          "\x00", "\\", "{", "}", "child", "place", "2022-03-01T10:00:00Z", "x" * 30,
          "\udcff"]  # a byte that is not UTF-8


@pytest.mark.parametrize("seed", range(RANDOM_FILES))
def test_random_csv_files(tmp_path, seed, monkeypatch):
    """Random records from awkward pieces: quoted and not, right and wrong widths, blank."""
    rng = random.Random(seed)
    monkeypatch.setattr(columnar, "BLOCK_BYTES", rng.choice([80, 300, 4096]))

    def cell():
        value = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 4)))
        if rng.random() < 0.5 or any(c in value for c in ',"\r\n'):
            return '"' + value.replace('"', '""') + '"'
        return value

    out = ["id,text,family,created_at,note"]
    for i in range(rng.randint(20, 120)):
        roll = rng.random()
        if roll < 0.05:
            out.append(rng.choice(["", "   ", ",,,,", "\t"]))
            continue
        width = 5 if roll > 0.15 else rng.randint(1, 7)
        cells = [rng.choice([f"r{i % 40}", f" r{i} ", "", cell()])] + \
            [cell() for _ in range(width - 1)]
        if width >= 4 and rng.random() < 0.5:
            cells[2] = rng.choice(["child", "place", "health", "pets", " child ", ""])
            cells[3] = rng.choice(["2022-03-01T10:00:00Z", "", "2022-02-30", "1650000000"])
        out.append(",".join(cells))
    newline = rng.choice(["\n", "\r\n", "\r"])
    path = tmp_path / f"random{seed}.csv"
    path.write_bytes(newline.join(out).encode("utf-8", errors="surrogateescape") +
                     (newline.encode() if rng.random() < 0.7 else b""))
    same(path, max_text=rng.choice([5, 200]))


def test_a_large_file_in_many_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(columnar, "BLOCK_BYTES", 1 << 14)
    path = tmp_path / "large.csv"
    rng = random.Random(5)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("id,text,keyword,family,created_at,lang\n")
        for i in range(20_000):
            post_id = f"{i}" if rng.random() > 0.01 else f"{rng.randrange(i + 1)}"
            text = rng.choice(["plain words", 'a "quoted" word', "two\nlines", "Ünï"])
            handle.write(f'{post_id},"{text.replace(chr(34), chr(34) * 2)} {i}",kw,'
                         f'{rng.choice(["child", "place", "x"])},2022-01-{1 + i % 28:02d},en\n')
    posts, rejects = same(path)
    assert len(posts) > 10_000 and any(r.reason.startswith("duplicate") for r in rejects)


@pytest.mark.parametrize("seed", range(RANDOM_FILES))
def test_random_jsonl_files(tmp_path, seed, monkeypatch):
    """Random lines: objects of strings, numbers, booleans, nulls, nested values and missing
    keys, with broken and blank lines among them."""
    rng = random.Random(seed)
    monkeypatch.setattr(columnar, "BLOCK_BYTES", rng.choice([100, 1000, 1 << 20]))
    values = [None, "", " ", "x", 'q"uote', "back\\slash", "tab\t", "é😀", "\u3000pad\u3000",
              "child", "place", "2022-03-01T10:00:00Z", "x" * 40]
    if rng.random() < 0.5:  # types pyarrow cannot give as json.loads does: those blocks by row
        values += [True, 0, -7, 2**70, 1.5, [1, "a"], {"k": 1}]
    lines = []
    for i in range(rng.randint(10, 80)):
        roll = rng.random()
        if roll < 0.05:
            lines.append(rng.choice(["", "   ", "[1]", '{"id": 1', "{}", "nul\x00l", '"s"']))
            continue
        row = {}
        for key in ("id", "text", "family", "keyword", "created_at", "extra", "more"):
            if rng.random() < 0.8:
                row[key] = rng.choice(values + [f"j{i % 25}"] * 6 if key == "id" else values)
        lines.append(json.dumps(row, ensure_ascii=rng.random() < 0.5))
    path = tmp_path / f"random{seed}.jsonl"
    newline = rng.choice(["\n", "\r\n"])
    path.write_bytes(newline.join(lines).encode("utf-8", errors="surrogateescape") + b"\n")
    same(path, max_text=rng.choice([5, 200]))
