"""The blind preference panel: two candidates' pictures of each pair, judged by raters who do
not know which is which (see benchmarks/README.md, "Blind preference panel").

    # 1. sheets: for each pair, two sheets (both orders) in a shuffled sequence; the key apart
    .venv/bin/python benchmarks/preference.py sheets --name NAME --a defaults --b old-defaults
    # 2. give each rater results/preference/NAME/sheets/ and RATERS.md; each writes
    #    results/preference/NAME/verdicts/RATER.csv (sheet,choice,confidence,reason)
    # 3. the win rates (batches given to different raters: join them first with
    #    `combine --name ALL --parts NAME1,NAME2`)
    .venv/bin/python benchmarks/preference.py tally --name NAME

Candidates are quality.py's (``defaults``, ``old-defaults``, ``defaults+field=value``: the
pictures are made, or reused, exactly as the quality panel makes them), ``pastiche`` (its
cached 300-step picture) or ``dir:PATH`` (PATH/<pair>.png, e.g. another tool's pictures).
A sheet shows the photo and the painting on top, the two pictures (A left, B right) at the
panel's size, and below them the same region of both at 200 % (the photo's flattest region,
where colour grain shows). The sheets go to results/preference/NAME/ (the folder raters get),
the key to results/preference/keys/NAME.json, both out of git (the photos may not be
shipped); the tally goes to results/preference-NAME.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import secrets
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality

RESULTS = quality.ROOT / "benchmarks" / "results"
BASE = RESULTS / "preference"
RATER_TEXT = """# Rating sheets

Each file in sheets/ (in the order of sheets.txt) shows, on top, a **photo** (left) and a
**painting** (right); below them two pictures, **A** (left) and **B** (right), each a
repainting of the photo in the style of the painting; at the bottom, the same region of A and
B at 200 % (look for grain, smears and stray objects there).

For each sheet, say which picture you would rather have as "this photo, painted in this
painting's style": judge it as a picture (does it look painted like the painting, with its
colours, strokes and mood? is the photo's scene still readable? are there flaws: colour
grain, blotches, pieces of the painting such as faces or eyes pasted where they do not
belong, washed-out areas?). There is no tie: pick the one you prefer, with a confidence
(1 = barely, 2 = clearly, 3 = strongly) and a short reason naming what decided it.

Write one line per sheet to verdicts/<your name>.csv:

    sheet,choice,confidence,reason
    3f9a1c,A,2,"B has colour grain in the sky; A keeps the bridge crisp"

Judge only what the sheets show; do not look for other files.
"""


def picture(pair: quality.Pair, name: str) -> Image.Image:
    """A candidate's picture of a pair (see the module doc)."""
    if name == "pastiche":
        path = quality.pastiche_path(pair)
        if not path.exists():
            raise SystemExit(f"no cached pastiche picture of {pair.name}: "
                             "run `quality.py pastiche --pairs ...` first")
        return Image.open(path).convert("RGB")
    if name.startswith("dir:"):
        return Image.open(Path(name[4:]) / f"{pair.name}.png").convert("RGB")
    return quality.estilo_picture(pair, name, reuse=True)[0]


def flattest_region(photo: Image.Image, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box of ``size`` where the photo's luminance changes least (a sky, a wall)."""
    grey = np.asarray(photo.convert("L"), dtype=np.float32)
    energy = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1]
    w, h = size
    best, where = np.inf, (0, 0)
    for y in range(0, max(1, energy.shape[0] - h), 16):
        for x in range(0, max(1, energy.shape[1] - w), 16):
            e = float(energy[y:y + h, x:x + w].mean())
            if e < best:
                best, where = e, (x, y)
    return where[0], where[1], where[0] + w, where[1] + h


def sheet(photo: Image.Image, painting: Image.Image, a: Image.Image, b: Image.Image) -> Image.Image:
    """The rating sheet (see the module doc)."""
    gap, label = 12, 22
    width = a.width + b.width + gap
    top = 256
    photo_small = photo.resize((round(photo.width * top / photo.height), top),
                               Image.Resampling.LANCZOS)
    painting_small = painting.resize((round(painting.width * top / painting.height), top),
                                     Image.Resampling.LANCZOS)
    photo_full = photo.resize(a.size, Image.Resampling.LANCZOS)
    crop_box = flattest_region(photo_full, (a.width // 4, a.height // 4))
    zoom = [im.crop(crop_box).resize((a.width // 2, a.height // 2), Image.Resampling.NEAREST)
            for im in (a, b)]
    height = label + top + gap + label + a.height + gap + label + zoom[0].height
    out = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(out)
    draw.text((4, 4), "photo", fill="black")
    draw.text((photo_small.width + gap + 4, 4), "painting", fill="black")
    out.paste(photo_small, (0, label))
    out.paste(painting_small, (photo_small.width + gap, label))
    y = label + top + gap
    draw.text((4, y + 4), "A", fill="black")
    draw.text((a.width + gap + 4, y + 4), "B", fill="black")
    out.paste(a, (0, y + label))
    out.paste(b, (a.width + gap, y + label))
    y += label + a.height + gap
    draw.text((4, y + 4), "A, 200 %", fill="black")
    draw.text((a.width + gap + 4, y + 4), "B, 200 %", fill="black")
    out.paste(zoom[0], (0, y + label))
    out.paste(zoom[1], (a.width + gap, y + label))
    return out


def make_sheets(name: str, a: str, b: str, pairs: list[quality.Pair], seed: int) -> Path:
    folder = BASE / name
    (folder / "sheets").mkdir(parents=True, exist_ok=True)
    (folder / "verdicts").mkdir(exist_ok=True)
    rng = random.Random(seed)
    key: dict[str, dict[str, str]] = {}
    for pair in pairs:
        photo = quality.rgb(quality.image_path(pair.content))
        painting = quality.rgb(quality.image_path(pair.style))
        pictures = {a: picture(pair, a), b: picture(pair, b)}
        for left, right in ((a, b), (b, a)):
            sheet_id = secrets.token_hex(3)
            sheet(photo, painting, pictures[left], pictures[right]).save(
                folder / "sheets" / f"{sheet_id}.png")
            key[sheet_id] = {"pair": pair.name, "A": left, "B": right}
            print(f"{pair.name}: sheet {sheet_id}", flush=True)
    order = list(key)
    rng.shuffle(order)
    (folder / "sheets.txt").write_text("\n".join(order) + "\n")
    (folder / "RATERS.md").write_text(RATER_TEXT)
    key_path(name).parent.mkdir(parents=True, exist_ok=True)
    key_path(name).write_text(json.dumps({"a": a, "b": b, "sheets": key}, indent=1) + "\n")
    return folder


def key_path(name: str) -> Path:
    """Where a panel's key lives: apart from the folder the raters are given."""
    return BASE / "keys" / f"{name}.json"


def read_verdicts(folder: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """{rater: {sheet: {choice, confidence, reason}}} from verdicts/*.csv."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted((folder / "verdicts").glob("*.csv")):
        rows = {}
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                choice = row["choice"].strip().upper()
                if choice not in ("A", "B"):
                    raise SystemExit(f"{path}: sheet {row['sheet']}: choice must be A or B")
                rows[row["sheet"].strip()] = {"choice": choice,
                                              "confidence": int(row["confidence"]),
                                              "reason": row.get("reason", "").strip()}
        out[path.stem] = rows
    return out


def combine(name: str, parts: list[str]) -> Path:
    """One panel ``name`` from batches judged apart (e.g. pairs split between two sets of
    raters): their keys joined, their verdict files copied. The batches must compare the
    same two candidates and their raters' names must differ."""
    keys = [json.loads(key_path(p).read_text()) for p in parts]
    if len({(k["a"], k["b"]) for k in keys}) != 1:
        raise SystemExit(f"{', '.join(parts)} do not compare the same two candidates")
    joined = {"a": keys[0]["a"], "b": keys[0]["b"], "sheets": {}}
    verdicts = BASE / name / "verdicts"
    verdicts.mkdir(parents=True, exist_ok=True)
    for part, key in zip(parts, keys, strict=True):
        joined["sheets"].update(key["sheets"])
        for path in (BASE / part / "verdicts").glob("*.csv"):
            if (verdicts / path.name).exists() and part != parts[0]:
                raise SystemExit(f"rater {path.stem} is in two batches: rename one file")
            (verdicts / path.name).write_bytes(path.read_bytes())
    key_path(name).write_text(json.dumps(joined, indent=1) + "\n")
    return BASE / name


def tally(name: str) -> dict[str, Any]:
    """Win rates per candidate, per pair and per rater, and the raters' agreement."""
    folder = BASE / name
    key = json.loads(key_path(name).read_text())
    a, b, sheets = key["a"], key["b"], key["sheets"]
    verdicts = read_verdicts(folder)
    # winner[rater][sheet] = candidate chosen
    winner = {r: {s: sheets[s][v["choice"]] for s, v in rows.items() if s in sheets}
              for r, rows in verdicts.items()}
    by_pair: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for rater, rows in winner.items():
        for s, cand in rows.items():
            by_pair[sheets[s]["pair"]][rater].append(cand)
    pairs_out = {}
    pair_wins = {a: 0.0, b: 0.0}
    for pair, raters in sorted(by_pair.items()):
        votes = [c for cands in raters.values() for c in cands]
        share = votes.count(a) / len(votes)
        pairs_out[pair] = {"votes_a": votes.count(a), "votes_b": votes.count(b),
                           "order_consistent": {r: len(set(c)) == 1 for r, c in raters.items()}}
        if share > 0.5:
            pair_wins[a] += 1
        elif share < 0.5:
            pair_wins[b] += 1
        else:
            pair_wins[a] += 0.5
            pair_wins[b] += 0.5
    all_votes = [c for rows in winner.values() for c in rows.values()]
    raters = sorted(winner)
    # Agreement: over every two raters who judged the same sheet (raters may have had
    # different batches of pairs), how often they chose the same picture.
    both = [(winner[r][s], winner[q][s]) for s in sheets
            for i, r in enumerate(raters) for q in raters[i + 1:]
            if s in winner[r] and s in winner[q]]
    agree = sum(x == y for x, y in both) / len(both) if both else None
    reasons = {r: {s: f"{sheets[s]['pair']}: chose {winner[r][s]} "
                      f"({verdicts[r][s]['confidence']}): {verdicts[r][s]['reason']}"
                   for s in winner[r]} for r in raters}
    return {"a": a, "b": b, "raters": raters, "verdicts": len(all_votes),
            "verdict_wins": {a: all_votes.count(a), b: all_votes.count(b)},
            "pair_wins": pair_wins, "pairs": pairs_out, "agreement": agree,
            "per_rater": {r: {a: list(winner[r].values()).count(a),
                              b: list(winner[r].values()).count(b)} for r in raters},
            "reasons": reasons}


def report(t: dict[str, Any], name: str) -> str:
    a, b = t["a"], t["b"]
    n = len(t["pairs"])
    lines = [f"# Blind preference panel `{name}`: {a} against {b}", "",
             (f"Raters: {', '.join(t['raters'])}; {t['verdicts']} verdicts (each pair in both "
             "orders)."), "",
             (f"- **pairs won** (majority of a pair's verdicts; a tie counts half): {a} "
             f"**{t['pair_wins'][a]:g} of {n}**, {b} {t['pair_wins'][b]:g}"),
             (f"- verdicts: {a} {t['verdict_wins'][a]}, {b} {t['verdict_wins'][b]} "
             f"({t['verdict_wins'][a] / max(1, t['verdicts']):.0%} for {a})"),
             "- agreement between raters (two raters of one sheet chose the same): "
             + (f"{t['agreement']:.0%}" if t["agreement"] is not None else "one rater"), "",
             f"| pair | votes for {a} | votes for {b} | each rater chose the same in both orders |",
             "|---|---|---|---|"]
    for pair, p in t["pairs"].items():
        consistent = ", ".join(f"{r}: {'yes' if ok else 'no'}"
                               for r, ok in p["order_consistent"].items())
        lines.append(f"| {pair} | {p['votes_a']} | {p['votes_b']} | {consistent} |")
    lines += ["", "Per rater: " + "; ".join(f"{r}: {v[a]} for {a}, {v[b]} for {b}"
                                           for r, v in t["per_rater"].items()), "",
              "## Reasons", ""]
    for rater, rows in t["reasons"].items():
        lines.append(f"**{rater}**")
        lines += [f"- {text}" for text in sorted(rows.values())]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p_sheets = sub.add_parser("sheets", help="make the rating sheets and their key")
    p_sheets.add_argument("--name", required=True)
    p_sheets.add_argument("--a", required=True, help="candidate A (quality.py name, pastiche, "
                                                     "dir:PATH)")
    p_sheets.add_argument("--b", required=True)
    p_sheets.add_argument("--pairs", type=lambda t: t.split(","), default=None)
    p_sheets.add_argument("--seed", type=int, default=0, help="the sheets' shuffled order")
    p_tally = sub.add_parser("tally", help="win rates from the raters' verdicts")
    p_tally.add_argument("--name", required=True)
    p_combine = sub.add_parser("combine", help="join batches judged by different raters")
    p_combine.add_argument("--name", required=True)
    p_combine.add_argument("--parts", required=True, type=lambda t: t.split(","))
    args = parser.parse_args(argv)
    if args.what == "combine":
        print(f"combined in {combine(args.name, args.parts)}: tally it with --name {args.name}")
        return 0
    if args.what == "sheets":
        folder = make_sheets(args.name, args.a, args.b, quality.selected_pairs(args.pairs),
                             args.seed)
        print(f"sheets in {folder / 'sheets'}; give raters RATERS.md and sheets.txt, "
              f"the key is in {key_path(args.name)}")
        return 0
    t = tally(args.name)
    text = report(t, args.name)
    (RESULTS / f"preference-{args.name}.md").write_text(text)
    (RESULTS / f"preference-{args.name}.json").write_text(json.dumps(t, indent=1) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
