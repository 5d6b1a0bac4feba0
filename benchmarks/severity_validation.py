"""Does the shortcut severity predict failure on data from another source? Train on one
source mix, test on another, compare the severity measured on the training run with the
accuracy drop measured on the shifted set.

    .venv/bin/python benchmarks/severity_validation.py OUT [--per-class 150] [--epochs 8]

Steps (each a normal command of the tool, so every number can be reopened in the dashboard):

1. ``benchmarks/make_signature_sets.py OUT/sets``: demo datasets with a source signature
   (a border texture, an intensity shift) planted in the notumor class at several rates, and
   for each kind a shifted set with the signature on the tumor images instead.
2. ``train_all.py --data OUT/sets/train_<kind>/r<rate> --models ...``: one run per set, with
   its analysis pass (maps, shortcut measures, counterfactual probes, severity).
3. ``train_all.py --evaluate RUN --data OUT/sets/shifted_<kind> --name shifted --no-explain``.

Writes ``OUT/severity_validation.json`` and prints a markdown table: per model, its test
accuracy, accuracy on the shifted set, the drop, the share of the shifted set's tumors called
notumor, the severity (with its interval) and the old score; and the Spearman rank
correlation of each measure with the drop. Reruns reuse finished runs and evaluations.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from bt_core.artifacts import load_manifest, load_shortcuts
from bt_core.artifacts.layout import METRICS, PREDICTIONS, evaluation_dir, model_dir

KINDS = ("border_texture", "intensity_shift")
RATES = ("0.00", "0.50", "0.90", "1.00")
DEFAULT_MODELS = "simple_cnn,custom_cnn"
EVALUATION = "shifted"
# Below this test accuracy a model did not train (a 4-class collapse sits at 0.25): its drop
# and severity are both ~0, which would flatter a rank correlation.
TRAINED_ACCURACY = 0.5


def _run(command: list[str]) -> None:
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)


def _accuracy(run_dir: Path, model: str) -> float:
    return float(json.loads((model_dir(run_dir, model) / METRICS).read_text())["accuracy"])


def _called_notumor(run_dir: Path, model: str) -> float:
    """Share of the tumor images of an evaluation predicted as notumor."""
    frame = pd.read_csv(model_dir(run_dir, model) / PREDICTIONS, dtype={"label": str, "pred": str})
    tumors = frame[frame["label"] != "notumor"]
    return float((tumors["pred"] == "notumor").mean()) if len(tumors) else float("nan")


def rows_of_run(run_dir: Path, kind: str, rate: str) -> list[dict]:
    manifest = load_manifest(run_dir)
    shortcuts = load_shortcuts(run_dir) or {"models": {}}
    shifted = evaluation_dir(run_dir, EVALUATION)
    rows = []
    for model, entry in manifest.models.items():
        if not entry.is_done:
            continue
        record = shortcuts["models"].get(model, {})
        severity = record.get("severity") or {}
        test, moved = _accuracy(run_dir, model), _accuracy(shifted, model)
        rows.append({
            "kind": kind, "rate": float(rate), "model": model,
            "test_accuracy": test, "shifted_accuracy": moved, "drop": test - moved,
            "shifted_tumors_called_notumor": _called_notumor(shifted, model),
            "severity": severity.get("severity", float("nan")),
            "severity_low": severity.get("ci_low", float("nan")),
            "severity_high": severity.get("ci_high", float("nan")),
            "driving_pair": severity.get("driving_pair", ""),
            "swap_severity": (record.get("swap_severity") or {}).get("severity", float("nan")),
            "style_severity": (record.get("style_severity") or {}).get("severity", float("nan")),
            "old_score": record.get("score", float("nan")),
        })
    return rows


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a GitHub markdown table, floats to 3 decimals (no extra dependency)."""
    def cell(value) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def correlations(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Spearman's rho (and its p) of each measure with the measured drop, over all rows."""
    result = {}
    for measure in ("severity", "swap_severity", "style_severity", "old_score"):
        values = table[[measure, "drop"]].dropna()
        if len(values) >= 3 and values[measure].nunique() > 1:
            rho, p = spearmanr(values[measure], values["drop"])
            result[measure] = {"rho": float(rho), "p": float(p), "n": int(len(values))}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-class", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--rates", default=",".join(RATES))
    args = parser.parse_args(argv)
    sets, runs = args.out / "sets", args.out / "runs"
    python = sys.executable
    rates = [f"{float(r):.2f}" for r in args.rates.split(",")]
    _run([python, "benchmarks/make_signature_sets.py", str(sets), "--per-class", str(args.per_class),
          "--rates", ",".join(rates), "--kinds", args.kinds])
    rows = []
    for kind in args.kinds.split(","):
        for rate in rates:
            run_id = f"{kind}-r{rate}"
            run_dir = runs / run_id
            if not (run_dir / "shortcuts" / "summary.json").is_file():
                _run([python, "train_all.py", "--data", str(sets / f"train_{kind}" / f"r{rate}"),
                      "--models", args.models, "--epochs", str(args.epochs), "--img-size", "64",
                      "--seed", "0", "--out", str(runs), "--run-id", run_id]
                     + (["--resume"] if run_dir.exists() else []))
            if not evaluation_dir(run_dir, EVALUATION).is_dir():
                _run([python, "train_all.py", "--evaluate", str(run_dir), "--data", str(sets / f"shifted_{kind}"),
                      "--name", EVALUATION, "--no-explain"])
            rows.extend(rows_of_run(run_dir, kind, rate))
    table = pd.DataFrame(rows)
    result = {"per_class": args.per_class, "epochs": args.epochs, "models": args.models,
              "rows": table.to_dict("records"), "spearman_with_drop": correlations(table)}
    result["spearman_trained_only"] = correlations(table[table["test_accuracy"] >= TRAINED_ACCURACY])
    for kind, part in table.groupby("kind"):
        result.setdefault("spearman_by_kind", {})[kind] = correlations(part)
    (args.out / "severity_validation.json").write_text(json.dumps(result, indent=2, default=float))
    shown = table.assign(severity=[f"{s:.2f} [{lo:.2f}, {hi:.2f}]" for s, lo, hi in
                                   zip(table["severity"], table["severity_low"], table["severity_high"])])
    print(markdown_table(shown.drop(columns=["severity_low", "severity_high"])))
    print(json.dumps({"all": result["spearman_with_drop"], "trained_only": result["spearman_trained_only"]}, indent=2))
    print(json.dumps(result.get("spearman_by_kind", {}), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
