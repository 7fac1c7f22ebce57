"""Every SQL statement of the application lives in a store (`proctor/stores/`), or in
`proctor/db.py` (connecting and migrating); everywhere else calls a store's typed methods.

Read with `ast`, so only string literals count (f-strings and `+` chains of them included, with
a placeholder for each interpolated value); docstrings are prose, never run, and are skipped. A
literal is a statement when it starts with a statement keyword followed by the clause that
keyword needs (`SELECT … FROM`, `INSERT INTO`, `UPDATE … SET`, `DELETE FROM`, `CREATE TABLE` …),
so a command named "create" or a message saying "update x" is not one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCANNED = ("proctor", "activities", "workflows", "worker")
SQL_HOMES = ("proctor/stores/", "proctor/db.py")

_OBJECT = r"(?:TABLE|INDEX|VIEW|FUNCTION|TRIGGER|ROLE|DATABASE|SCHEMA|EXTENSION|TYPE|SEQUENCE)"
_STATEMENT = re.compile(
    r"""\s*(?:
        SELECT\s(?:.*\bFROM\b|\s*(?:\*|\d|\$\d|\w+\(|\{\}))
      | INSERT\s+INTO\s
      | UPDATE\s+\S+\s+SET\s
      | DELETE\s+FROM\s
      | WITH\s+(?:RECURSIVE\s+)?\w+\s+AS\s*\(
      | CREATE\s+(?:OR\s+REPLACE\s+|UNIQUE\s+|TEMP(?:ORARY)?\s+)*"""
    + _OBJECT
    + r"""\b
      | (?:ALTER|DROP)\s+"""
    + _OBJECT
    + r"""\b
      | LOCK\s+(?:TABLE\s+)?\w+(?:\s+IN\s|\s*;?\s*$)
      | TRUNCATE\s+(?:TABLE\s+)?\w+\s*(?:[,;]|\s(?:RESTART|CONTINUE|CASCADE|RESTRICT)\b|$)
      | (?:VACUUM|ANALYZE)(?:\s*\(.*?\))?(?:\s+(?:FULL|VERBOSE|ANALYZE))*(?:\s+\w+)?\s*;?\s*$
      | (?:GRANT|REVOKE)\s+(?:(?:ALL|SELECT|INSERT|UPDATE|DELETE|TRUNCATE|USAGE|EXECUTE|CONNECT)
                           \b|["{])
      | COPY\s+\w+.*\b(?:FROM|TO)\s+(?:STDIN|STDOUT|PROGRAM|')
      | MERGE\s+INTO\s
    )""",
    re.IGNORECASE | re.DOTALL | re.VERBOSE,
)


def looks_like_sql(text: str) -> bool:
    return _STATEMENT.match(text) is not None


def _text(node: ast.expr) -> str | None:
    """The literal text of a string expression, `{}` for each value put into it; None when
    the expression is not built from a string literal."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(part) or "{}" for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        if left is None and right is None:
            return None
        return (left or "{}") + (right or "{}")
    return None


def statements_in(source: str) -> list[tuple[int, str]]:
    """(line, text) of every SQL-looking string literal outside docstrings, in source order."""
    tree = ast.parse(source)
    prose = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    found: list[tuple[int, str]] = []
    covered: set[int] = set()  # parts of a string already judged whole
    for node in ast.walk(tree):
        if not isinstance(node, ast.expr) or id(node) in prose or id(node) in covered:
            continue
        text = _text(node)
        if text is None:
            continue
        covered.update(id(part) for part in ast.walk(node))
        if looks_like_sql(text):
            found.append((node.lineno, text))
    return sorted(found)


def misplaced_sql(root: Path) -> list[str]:
    """`path:line: statement` for each statement under SCANNED outside SQL_HOMES."""
    misplaced = []
    for top in SCANNED:
        for path in sorted((root / top).rglob("*.py")):
            name = path.relative_to(root).as_posix()
            if name.startswith(SQL_HOMES):
                continue
            for line, text in statements_in(path.read_text(encoding="utf-8")):
                misplaced.append(f"{name}:{line}: {' '.join(text.split())[:70]}")
    return misplaced


def test_sql_lives_only_in_stores_and_db() -> None:
    misplaced = misplaced_sql(ROOT)
    assert not misplaced, "SQL outside proctor/stores/ and proctor/db.py:\n" + "\n".join(misplaced)


def test_the_check_sees_every_way_a_statement_is_written() -> None:
    source = '''
"""Create the thing: a docstring saying select from where is prose."""
COLUMNS = "seq, hash"

async def reads(pool, name, seq):
    """Update the cache (prose again)."""
    await pool.fetch("SELECT seq FROM audit_log")
    await pool.fetch(f"SELECT {COLUMNS} FROM audit_log WHERE seq = $1", seq)
    await pool.fetch("select " + COLUMNS + " from audit_log")
    await pool.fetchval("SELECT now()")
    await pool.execute(
        "INSERT INTO t (a) VALUES ($1)"
        " ON CONFLICT DO NOTHING", 1
    )
    await pool.execute("update agents set status = $1", name)
    await pool.execute("\\n  DELETE FROM rate_admissions WHERE agent_id = $1", name)
    await pool.execute("WITH old AS (SELECT 1) SELECT * FROM old")
    await pool.execute("VACUUM FULL audit_subject_keys")
    await pool.execute("TRUNCATE plain_log")
    await pool.execute("LOCK TABLE audit_log IN EXCLUSIVE MODE")
    await pool.execute(f'GRANT "{name}" TO proctor_app')
    await pool.execute("CREATE TABLE IF NOT EXISTS x (a int)")
    await pool.execute("ALTER TABLE x ADD COLUMN b int")
'''
    assert len(statements_in(source)) == 14


def test_words_that_are_not_statements_pass() -> None:
    source = '''
import click

@click.command("create")
def create(name):
    """Create AGENT_ID with a fresh key pair."""
    label = f"update {name}"
    kinds = ("delete:customer", "revoke", "update", "select")
    hint = "merge keys (<<) are not supported: write the fields out (an alias works)"
    note = "Create-only (never overwrite a key), readable by the owner alone."
    other = "select a key with --key, then lock it"
    return label, kinds, hint, note, other
'''
    assert statements_in(source) == []


def test_a_statement_planted_outside_the_stores_is_reported(tmp_path: Path) -> None:
    statement = 'QUERY = "SELECT hash FROM audit_log WHERE seq = $1"\n'
    for name in ("proctor/stores/ledger.py", "proctor/db.py", "proctor/cli/show.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(statement)
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "app.py").write_text(f"def run():\n    {statement}")

    assert misplaced_sql(tmp_path) == [
        "proctor/cli/show.py:1: SELECT hash FROM audit_log WHERE seq = $1",
        "worker/app.py:2: SELECT hash FROM audit_log WHERE seq = $1",
    ]
