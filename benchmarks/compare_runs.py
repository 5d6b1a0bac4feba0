"""Compare two run folders of the same experiment: every metrics.json value and the shortcut
summary, leaf by leaf (e.g. a run made before and after a change of the code).

    .venv/bin/python benchmarks/compare_runs.py artifacts/RUN_A artifacts/RUN_B

Prints, per model, how many metrics.json values differ, the shortcut score and flags of both,
and every attention measure (all test images) that moved; then whether the audits agree.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _flat(item, f"{prefix}{i}.").items()}
    return {prefix[:-1]: value}


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _flags(record: dict) -> list[tuple]:
    return [(f["name"], f["overall"], tuple(f["classes"])) for f in record.get("flags", [])]


def compare(first: Path, second: Path) -> None:
    for model in sorted(p.name for p in (first / "models").iterdir() if (p / "metrics.json").is_file()):
        a, b = (_flat(_read(run / "models" / model / "metrics.json")) for run in (first, second))
        changed = sorted(key for key in a.keys() | b.keys() if a.get(key) != b.get(key))
        print(f"{model}: metrics.json {len(changed)} of {len(a)} values differ {changed[:6]}")
        print(f"  accuracy {a.get('accuracy')} / {b.get('accuracy')}; macro_f1 {a.get('macro_f1')} / {b.get('macro_f1')}")
    summaries = [run / "shortcuts" / "summary.json" for run in (first, second)]
    if not all(path.is_file() for path in summaries):
        print("no shortcut summary in one of the runs")
        return
    a, b = (_read(path) for path in summaries)
    for model in sorted(a["models"]):
        ra, rb = a["models"][model], b["models"].get(model, {})
        print(f"{model}: score {ra.get('score')} / {rb.get('score')}; flags same: {_flags(ra) == _flags(rb)}")
        if _flags(ra) != _flags(rb):
            print(f"  first  {_flags(ra)}\n  second {_flags(rb)}")
        for measure, value in ra.get("attention", {}).get("all", {}).items():
            other = rb.get("attention", {}).get("all", {}).get(measure)
            if value != other:
                print(f"  attention all {measure}: {value} / {other}")
    print("audit identical:", _flat(a.get("audit", {})) == _flat(b.get("audit", {})))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    args = parser.parse_args()
    compare(args.first, args.second)


if __name__ == "__main__":
    main()
