"""The command line as a user runs it: real processes, a real database, clear errors."""

import os
import subprocess
import sys

import pytest

from trainset import tokens


def run_cli(args, database_url, home):
    env = dict(os.environ, TRAINSET_DATABASE_URL=database_url, TRAINSET_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "trainset", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_coders_add_prints_a_working_token(db, database_url, tmp_path):
    result = run_cli(["coders", "add", "bob", "--certified"], database_url, tmp_path)
    assert result.returncode == 0, result.stderr
    token = result.stdout.split("token: ")[1].strip()
    claims = tokens.verify(token, os.environ["TRAINSET_TOKEN_SECRET"])
    assert claims.name == "bob"
    assert db.run("SELECT name, role, status FROM coders") == [["bob", "coder", "certified"]]

    again = run_cli(["coders", "add", "bob"], database_url, tmp_path)
    assert again.returncode == 2
    assert "already exists" in again.stderr and "Traceback" not in again.stderr

    bad = run_cli(["coders", "add", "bad name"], database_url, tmp_path)
    assert bad.returncode == 2 and "name:" in bad.stderr

    listed = run_cli(["coders", "list"], database_url, tmp_path)
    assert "bob" in listed.stdout and "certified" in listed.stdout
    missing = run_cli(["coders", "token", "nobody"], database_url, tmp_path)
    assert missing.returncode == 2 and "no coder named nobody" in missing.stderr


def test_demo_load_is_idempotent(db, database_url, tmp_path):
    first = run_cli(["demo", "load", "--posts-per-family", "6"], database_url, tmp_path)
    assert first.returncode == 0, first.stderr
    counts = db.run("SELECT family, count(*) FROM tasks GROUP BY family ORDER BY family")
    assert counts == [["child", 12], ["health", 12], ["place", 12]]  # 6 posts x 2 labels
    assert db.run("SELECT count(*) FROM gold_posts")[0][0] > 0
    assert (tmp_path / "blobs" / "demo" / "child" / "0000.jpg").is_file()
    second = run_cli(["demo", "load"], database_url, tmp_path)
    assert "nothing loaded" in second.stdout
    assert db.run("SELECT count(*) FROM tasks")[0][0] == 36


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["coders", "add", "--help"],
                                  ["db", "migrate", "--help"], ["demo", "load", "--help"],
                                  ["images", "augment", "--help"], ["sample", "--help"],
                                  ["quality", "run", "--help"], ["pipeline", "run", "--help"],
                                  ["export", "labels", "--help"], ["corpus", "import", "--help"]])
def test_every_command_has_help(args, tmp_path):
    result = subprocess.run([sys.executable, "-m", "trainset", *args], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "usage:" in result.stdout


def test_unreachable_database_is_explained(tmp_path):
    result = run_cli(["db", "migrate"], "postgresql://u:secretpw@127.0.0.1:1/x", tmp_path)
    assert result.returncode == 2
    assert "cannot connect to PostgreSQL at u@127.0.0.1:1/x" in result.stderr
    assert "secretpw" not in result.stderr and "Traceback" not in result.stderr


def test_import_sample_estimate_as_a_new_user_would(db, database_url, tmp_path):
    corpus = tmp_path / "posts.csv"
    lines = ["id,text,keyword,family"]
    for i in range(60):
        keyword = ("toddler", "minor", "youth")[i % 3]
        lines.append(f"p{i:03d},Post {i} about a {keyword} - {'lorem ipsum ' * (i % 7)} end {i},"
                     f"{keyword},child")
    lines += [",no id,minor,child", "p999,,minor,child", "p998,bad date,minor,child,x"]
    corpus.write_text("\n".join(lines) + "\n")
    rejects = tmp_path / "rejects.csv"
    imported = run_cli(["corpus", "import", str(corpus), "--rejects", str(rejects)],
                       database_url, tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert "60 new" in imported.stdout and "3 rejected" in imported.stdout
    assert str(rejects) in imported.stdout
    assert len(rejects.read_text().splitlines()) == 4  # header + 3 rows, each with its line

    alloc = tmp_path / "alloc.csv"
    sampled = run_cli(["sample", "--family", "child", "--budget", "15", "--strategy", "equal",
                       "--seed", "4", "--name", "first", "--allocation-out", str(alloc)],
                      database_url, tmp_path)
    assert sampled.returncode == 0, sampled.stderr
    assert "campaign first" in sampled.stdout and "exact duplicates" in sampled.stdout
    assert alloc.read_text().splitlines()[0] == (
        "keyword,population,sampled,inclusion_prob,pilot_yield,expected_positives")
    assert db.run("SELECT count(*) FROM tasks")[0][0] == 15

    empty = run_cli(["estimate", "--family", "child"], database_url, tmp_path)
    assert empty.returncode == 0 and "no labels yet" in empty.stdout
    bad = run_cli(["sample", "--family", "child", "--budget", "10", "--strategy", "neyman"],
                  database_url, tmp_path)
    assert bad.returncode == 2 and "pilot yields" in bad.stderr
    missing = run_cli(["estimate", "--family", "place"], database_url, tmp_path)
    assert missing.returncode == 2 and "no campaign" in missing.stderr


def test_quality_report_and_export_commands(db, database_url, tmp_path):
    from tests.factories import CHILD_NO, make_campaign, make_coder, make_posts, service
    from tests.factories import submission as make_submission

    make_campaign(db, make_posts(db, 6), labels_per_post=2)
    for name in ("ana", "ben"):
        coder = make_coder(db, name)
        svc = service(db)
        while (task := svc.next_task(coder, "child")["task"]) is not None:
            svc.submit(coder, make_submission(task["post_id"], CHILD_NO))
    ran = run_cli(["quality", "run", "--family", "child"], database_url, tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "gold and practice posts: 0 removed" in ran.stdout and "kept 6 of 6" in ran.stdout
    estimated = run_cli(["estimate", "--family", "child", "--refits", "5"], database_url,
                        tmp_path)
    assert estimated.returncode == 0, estimated.stderr
    assert "the model's own (5 bootstrap refits)" in estimated.stdout
    assert "Traceback" not in estimated.stderr
    negative = run_cli(["estimate", "--family", "child", "--refits", "-1"], database_url,
                       tmp_path)
    assert negative.returncode == 2 and "--refits" in negative.stderr
    report = run_cli(["report", "--out", str(tmp_path / "report")], database_url, tmp_path)
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "report" / "coder_report.xlsx").stat().st_size > 0
    exported = run_cli(["export", "labels", "--family", "child", "--out",
                        str(tmp_path / "export")], database_url, tmp_path)
    assert exported.returncode == 0 and "6 records exported" in exported.stdout
    bad = run_cli(["report", "--from", "2026-13-01", "--out", str(tmp_path)], database_url,
                  tmp_path)
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
    missing = run_cli(["export", "labels", "--family", "place", "--out", str(tmp_path)],
                      database_url, tmp_path)
    assert missing.returncode == 2 and "no quality run" in missing.stderr
    files = run_cli(["consensus", "--labels", str(tmp_path / "none.csv"), "--out",
                     str(tmp_path / "c.csv")], database_url, tmp_path)
    assert files.returncode == 2 and "cannot read" in files.stderr


def test_labels_import_help():
    result = subprocess.run([sys.executable, "-m", "trainset", "labels", "import", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage:" in result.stdout
    assert "--source" in result.stdout and "labelstudio" in result.stdout


def test_labels_import_through_the_cli(db, database_url, tmp_path):
    from tests.factories import make_posts

    make_posts(db, 3, prefix="s")
    wide = tmp_path / "study.csv"
    wide.write_text("is_child,age,id\nFalse,[''],s00000\nTrue,['Unsure'],s00001\n"
                    "True,[''],s00002\nFalse,[''],missing1\n")
    rejects = tmp_path / "rejects.csv"
    args = ["labels", "import", str(wide), "--family", "child", "--source", "study",
            "--rejects", str(rejects)]
    first = run_cli(args, database_url, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "4 labels read, 2 stored, 0 already there, 2 rejected" in first.stdout
    assert "rejected (invalid label (age: pick at least one option)): 1" in first.stdout
    assert "rejected (post not in the corpus): 1" in first.stdout
    assert "token" not in first.stdout.lower() and "token" not in first.stderr.lower()
    assert len(rejects.read_text().splitlines()) == 3
    again = run_cli(args, database_url, tmp_path)
    assert "2 stored" not in again.stdout and "0 stored, 2 already there" in again.stdout
    assert db.run("SELECT count(*) FROM labels WHERE kind = 'imported'") == [[2]]

    bad = run_cli(["labels", "import", str(tmp_path / "none.csv"), "--family", "child",
                   "--source", "study"], database_url, tmp_path)
    assert bad.returncode == 2 and "no such file" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [["gold", "import", "--help"], ["gold", "list", "--help"],
                                  ["gold", "export", "--help"]])
def test_gold_commands_have_help(args, tmp_path):
    result = subprocess.run([sys.executable, "-m", "trainset", *args], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "usage:" in result.stdout


def test_gold_import_list_export_as_a_manager_would(db, database_url, tmp_path):
    import json

    yes = json.dumps({"is_child": True, "age": ["1 to 4 years (toddler/pre-school)"]})
    gold = tmp_path / "practice.csv"
    gold.write_text(
        "id,text,family,answers,rationale\n"
        f'pr1,A toddler in the sandbox,child,"{yes.replace(chr(34), chr(34) * 2)}",a toddler\n'
        'pr2,Only adults here,child,"{""is_child"": false}",no child\n'
        'pr3,Broken,child,"{""is_child"": tru",\n', encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    imported = run_cli(["gold", "import", str(gold), "--purpose", "practice", "--rejects",
                        str(rejects)], database_url, tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert "2 new, 0 updated, 0 unchanged, 1 rejected" in imported.stdout
    assert "bad JSON in answers" in rejects.read_text()
    assert db.run("SELECT post_id, purpose FROM gold_posts ORDER BY post_id") == [
        ["pr1", "practice"], ["pr2", "practice"]]

    listed = run_cli(["gold", "list", "--family", "child"], database_url, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "pr1" in listed.stdout and "A toddler in the sandbox" in listed.stdout
    assert '"is_child": false' in listed.stdout and "2 gold post(s)" in listed.stdout

    out = tmp_path / "export.jsonl"
    exported = run_cli(["gold", "export", "--out", str(out)], database_url, tmp_path)
    assert exported.returncode == 0, exported.stderr
    again = run_cli(["gold", "import", str(out), "--purpose", "practice"], database_url,
                    tmp_path)
    assert "0 new, 0 updated, 2 unchanged, 0 rejected" in again.stdout

    wrong = tmp_path / "posts.csv"
    wrong.write_text("id,text\nx,hello\n")
    bad = run_cli(["gold", "import", str(wrong), "--purpose", "qa"], database_url, tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert f"{wrong}: no 'family' or 'answers' column" in bad.stderr
    assert "nothing was imported" in bad.stderr
