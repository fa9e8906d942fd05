"""No SQL is ever built from values: every statement is a literal with named parameters.

Walks the syntax tree of all product code (layers/, chalice_app/, lambdas/) and fails on
f-strings, %-formatting, .format() or concatenation that produce SQL, and on any
``conn.run()`` whose statement is not a string literal (migration files are the one,
reviewed, exception).
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|DROP|TRUNCATE|ALTER)\b")
ALLOWED_DYNAMIC_RUN = {
    ("layers/core/python/trainset/store/migrations.py", "m.sql"),  # reviewed migration files
}


def product_files():
    for top in ("layers", "chalice_app", "lambdas"):
        yield from (p for p in (ROOT / top).rglob("*.py") if "chalice.out" not in p.parts)


def literal_text(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    return ""


def problems_in(path: Path, root: Path = ROOT):
    rel = path.relative_to(root).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and SQL.search(literal_text(node)):
            if any(isinstance(v, ast.FormattedValue) for v in node.values):
                yield f"{rel}:{node.lineno}: f-string builds SQL"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
            texts = literal_text(node.left) + literal_text(node.right)
            both_literal = all(literal_text(n) for n in (node.left, node.right))
            if SQL.search(texts) and not both_literal:
                yield f"{rel}:{node.lineno}: SQL built with {type(node.op).__name__}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "format" and SQL.search(literal_text(node.func.value)):
                yield f"{rel}:{node.lineno}: SQL built with .format()"
            receiver = ast.unparse(node.func.value)
            if node.func.attr == "run" and node.args and receiver.endswith("conn"):
                first = node.args[0]
                if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    if (rel, ast.unparse(first)) not in ALLOWED_DYNAMIC_RUN:
                        yield f"{rel}:{node.lineno}: run() with a non-literal statement"


def test_no_sql_is_built_from_values():
    files = list(product_files())
    assert len(files) > 10
    found = [p for f in files for p in problems_in(f)]
    assert found == []


def test_the_check_catches_what_it_should(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f(conn, x):\n"
        "    conn.run(f\"SELECT * FROM posts WHERE id = '{x}'\")\n"
        "    conn.run(\"DELETE FROM posts WHERE id = \" + x)\n"
        "    q = \"UPDATE posts SET text = '%s'\" % x\n"
        "    conn.run(q)\n"
    )
    found = list(problems_in(bad, tmp_path))
    assert {int(p.split(":")[1]) for p in found} == {2, 3, 4, 5}
    assert any("f-string" in p for p in found) and any("Mod" in p for p in found)
