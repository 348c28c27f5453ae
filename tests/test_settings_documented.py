"""Every KEQUN_* variable is read in one place (kequn.conf) and documented in README's table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from kequn import conf

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "kequn"
NAME = re.compile(r"\bKEQUN_[A-Z0-9_]+\b")
# Uses of the environment that read no KEQUN_* setting: naming Django's settings module
# before Django starts, and handing the whole environment to a child process (pg_dump).
ALLOWED = {
    ("cli.py", "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'kequn.settings')"),
    ("wsgi.py", "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'kequn.settings')"),
    ("security/backups/postgresql.py", "dict(os.environ)"),
}


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def _documented() -> set[str]:
    names: set[str] = set()
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| `KEQUN_"):
            names |= set(NAME.findall(line.split("|")[1]))
    return names


def _environment_uses(path: Path) -> list[str]:
    """Return the source of each expression that touches os.environ or os.getenv."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    uses = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb"}) or (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and {a.name for a in node.names} & {"environ", "getenv", "environb"}
        ):
            uses.append(node)
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    found = []
    for node in uses:
        outer = node
        # Widen to the call or subscript around it: os.environ.get(...), os.environ[...].
        while isinstance(parents.get(outer), ast.Attribute | ast.Call | ast.Subscript):
            outer = parents[outer]
        found.append(ast.unparse(outer))
    return found


def test_every_variable_in_the_code_is_in_the_readme_table():
    used = {name for path in _sources() for name in NAME.findall(path.read_text("utf-8"))}
    missing = sorted(used - _documented())
    assert not missing, f"add these to README's settings table: {missing}"


def test_conf_knows_exactly_the_variables_the_code_names():
    used = {name for path in _sources() for name in NAME.findall(path.read_text("utf-8"))}
    assert set(conf.ENVIRONMENT) == used
    assert set(conf.ENVIRONMENT) <= _documented()


def test_only_conf_reads_the_environment():
    stray = []
    for path in _sources():
        where = path.relative_to(SRC).as_posix()
        if where == "conf.py":
            continue
        stray += [
            f"{where}: {use}" for use in _environment_uses(path) if (where, use) not in ALLOWED
        ]
    assert not stray, "read settings through kequn.conf.read_env: " + "; ".join(stray)


def test_read_env_refuses_an_unknown_name():
    try:
        conf.read_env("KEQUN_NOT_A_SETTING")
    except KeyError as exc:
        assert "ENVIRONMENT" in str(exc)
    else:
        raise AssertionError("an unknown name was read")
