"""The bar chart of RESULTS.md: one panel per scenario, one bar per stack.

    benchmarks/.venv/bin/python -m benchmarks.chart benchmarks/out/chart.json benchmarks/RESULTS.png

Runs in the bench venv (matplotlib is pinned in benchmarks/requirements.txt; the
development venv does not have it). Bars show the server's CPU time per request (per
idle connection: KiB of memory), shorter is better; dartle's stacks are drawn in a
darker colour. A FAILED or not-supported stack gets no bar, only the word.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: write a file
import matplotlib.pyplot as plt

DARTLE, ANCHOR = "#1f4e79", "#9db9d3"
ROW_INCHES = 0.32


def draw(entries: list[dict[str, Any]], png: Path) -> None:
    scenarios: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        scenarios.setdefault(entry["scenario"], []).append(entry)
    heights = [len(rows) + 1.5 for rows in scenarios.values()]
    figure, axes = plt.subplots(len(scenarios), 1, squeeze=False,
                                figsize=(9, ROW_INCHES * sum(heights) + 0.6),
                                gridspec_kw={"height_ratios": heights})
    for ax, (name, rows) in zip(axes[:, 0], scenarios.items(), strict=True):
        labels = [row["stack"] for row in rows]
        values = [row.get("value", 0.0) if row["status"] == "ok" else 0.0 for row in rows]
        colours = [DARTLE if row["stack"].startswith("dartle") else ANCHOR for row in rows]
        positions = range(len(rows))
        ax.barh(positions, values, color=colours)
        ax.set_yticks(list(positions), labels)
        ax.invert_yaxis()
        unit = next((row["unit"] for row in rows if "unit" in row), "")
        ax.set_title(f"{name}: {unit} (shorter is better)", loc="left", fontsize=10)
        top = max(values, default=0.0) or 1.0
        ax.set_xlim(0, top * 1.25)
        for position, row, value in zip(positions, rows, values, strict=True):
            if row["status"] == "ok":
                text = f"{value:.1f}"
            else:
                text = "FAILED" if row["status"] == "failed" else "not supported"
            ax.text(value + top * 0.01, position, text, va="center", fontsize=8,
                    color="black" if row["status"] == "ok" else "#b00020")
        ax.tick_params(axis="both", labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    figure.savefig(png, dpi=110)


def main() -> None:
    data, png = Path(sys.argv[1]), Path(sys.argv[2])
    draw(json.loads(data.read_text()), png)


if __name__ == "__main__":
    main()
