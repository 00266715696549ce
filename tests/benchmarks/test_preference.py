"""The blind preference panel's tally (benchmarks/preference.py): wins, agreement, batches."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def preference(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("preference", ROOT / "benchmarks" / "preference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "BASE", tmp_path)
    return module


def _batch(module, name, sheets, verdicts):
    """A panel's key (sheet -> pair and which candidate is A) and its raters' CSV files."""
    key = {"a": "new", "b": "old", "sheets": {
        s: {"pair": pair, "A": a, "B": "old" if a == "new" else "new"} for s, (pair, a) in sheets.items()}}
    module.key_path(name).parent.mkdir(parents=True, exist_ok=True)
    module.key_path(name).write_text(json.dumps(key))
    folder = module.BASE / name / "verdicts"
    folder.mkdir(parents=True)
    for rater, rows in verdicts.items():
        lines = ["sheet,choice,confidence,reason"] + [f'{s},{c},2,"why"' for s, c in rows.items()]
        (folder / f"{rater}.csv").write_text("\n".join(lines) + "\n")


def test_the_tally_counts_pictures_not_letters(preference):
    # Pair p1 in both orders: both raters chose the new picture, whichever letter it had.
    # Pair p2: one rater each way, so the pair is a tie.
    sheets = {"s1": ("p1", "new"), "s2": ("p1", "old"), "s3": ("p2", "new"), "s4": ("p2", "old")}
    _batch(preference, "x", sheets, {"r1": {"s1": "A", "s2": "B", "s3": "A", "s4": "B"},
                                     "r2": {"s1": "A", "s2": "B", "s3": "B", "s4": "A"}})
    t = preference.tally("x")
    assert t["pair_wins"] == {"new": 1.5, "old": 0.5}
    assert t["pairs"]["p1"]["votes_a"] == 4 and t["pairs"]["p2"]["votes_a"] == 2
    assert t["agreement"] == pytest.approx(0.5)       # same choice on s1, s2; not on s3, s4


def test_batches_judged_by_different_raters_combine(preference):
    _batch(preference, "a", {"s1": ("p1", "new"), "s2": ("p1", "old")}, {"r1": {"s1": "A", "s2": "A"}})
    _batch(preference, "b", {"s3": ("p2", "old"), "s4": ("p2", "new")}, {"r2": {"s3": "B", "s4": "A"}})
    preference.combine("ab", ["a", "b"])
    t = preference.tally("ab")
    assert set(t["pairs"]) == {"p1", "p2"} and t["pair_wins"] == {"new": 1.5, "old": 0.5}
    assert t["agreement"] is None                      # no sheet was judged by two raters
