"""The layer picture in README.md and the import contract CI checks name the same rows."""

import itertools
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Small modules the picture leaves out to stay readable.
LEFT_OUT = {"management", "wsgi", "datefilters", "errors", "logfilters"}


def read_contract_rows() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "layers")
    return [re.findall(r"kequn\.(\w+)", row) for row in contract["layers"]]


def read_readme_rows() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Layers", 1)[1].split("```", 2)[1]
    return [line for line in section.splitlines() if line.strip() and "│" not in line]


def test_every_layer_of_the_contract_is_drawn_in_order():
    drawn = read_readme_rows()
    contract = read_contract_rows()
    position = {}
    for index, line in enumerate(drawn):
        for name in re.findall(r"[a-z_]+", line):
            position.setdefault(name, index)
    missing = [name for row in contract for name in row if name not in position]
    # The foundations the picture groups under a word of its own.
    missing = [
        n for n in missing if n not in {"management", "wsgi", "datefilters", "errors", "logfilters"}
    ]
    assert not missing, f"README.md's layer picture does not show: {missing}"
    rows = [sorted({position[n] for n in row if n in position}) for row in contract]
    flat = [r for r in rows if r]
    for higher, lower in itertools.pairwise(flat):
        assert max(higher) <= min(lower), (
            f"README.md draws the layers in another order than pyproject.toml: {higher} {lower}"
        )
