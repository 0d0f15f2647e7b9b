"""The paper's Fig. 3 from a sweep report: one bar per cell, mean ± std over seeds, each seed as a dot.

Why dots as well as error bars: with three seeds a std hides as much as it shows; the dots let a reader see
the runs themselves. Bars are coloured by the data option (plain vs. with reasoning), the comparison the
figure is about, and the KOTE paper's KcELECTRA figure is drawn as a dashed line to read every bar against,
the reference floors computed on the runs' own rows (TF-IDF + logistic regression, the label prior, every
label) as dotted ones. ``paired.png`` draws each paired comparison's difference with its bootstrap interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a GPU node or in CI

import matplotlib.pyplot as plt  # after choosing the backend

PALETTE = ("#8c8c8c", "#e07b39", "#3b75af", "#519e3e", "#c03d3e", "#8d69b8")
FLOOR_LINES = {
    "tfidf_logreg": ("TF-IDF + LR floor", "#3b75af"),
    "label_prior": ("label-prior floor", "#8c8c8c"),
    "every_label": ("every-label floor", "#b07aa1"),
}


def floor_lines(report: dict[str, Any], metric: str) -> list[tuple[float, list[str], str]]:
    """(value, titles, colour) per line to draw: floors within half a point of each other share one line
    (at a tuned threshold the label prior often predicts every label, so those two floors coincide)."""
    lines: list[tuple[float, list[str], str]] = []
    for name, (title, colour_) in FLOOR_LINES.items():
        floor = report["floors"]["floors"].get(name, {}).get(metric, {}).get("mean")
        if floor is None:
            continue
        same = next((line for line in lines if abs(line[0] - floor) < 0.005), None)
        if same is None:
            lines.append((floor, [title], colour_))
        else:
            same[1].append(title)
    return lines


def _bar_labels(cells: list[dict[str, Any]], keys: list[str]) -> list[str]:
    """The cells' varying override values; without any, their model and method (those of them that vary).

    Data is left out: the bar's colour shows it.
    """
    if keys:
        return ["\n".join(str(c["columns"][k]) for k in keys) for c in cells]
    choices = ("model", "method")
    varying = [k for k in choices if len({c["choices"][k] for c in cells}) > 1] or list(choices)
    return ["\n".join(str(c["choices"][k]) for k in varying) for c in cells]


def _draw_bar(ax: Any, x: int, stat: dict[str, Any], fill: str, n: int) -> float:
    """One cell at ``x``: bar, ± std, a dot per run and the figures above; returns the highest point drawn."""
    if stat["mean"] is None:
        ax.text(x, 0.01, "no finished\nrun", ha="center", va="bottom", fontsize=8, color="#c03d3e")
        return 0.0
    values, std = stat["values"], stat["std"]
    ax.bar(x, stat["mean"], width=0.7, color=fill, edgecolor=fill, linewidth=2, yerr=std, capsize=5, zorder=2)
    spread = [0.18 * (i / (len(values) - 1) - 0.5) if len(values) > 1 else 0.0 for i in range(len(values))]
    ax.scatter([x + dx for dx in spread], values, s=14, color="black", zorder=3)
    high = max(*values, stat["mean"] + (std or 0.0))
    label = f"{stat['mean']:.3f}" + (f" ± {std:.3f}" if std is not None else "") + f"\nn={n}"
    ax.text(x, high + 0.012, label, ha="center", va="bottom", fontsize=8)
    return high


def plot_fig3(report: dict[str, Any], path: str | Path) -> Path:
    """Draw ``report``'s primary metric per cell to ``path`` (PNG).

    Bars sharing a label (the same model/method with different data) stand side by side, in sweep order.
    """
    metric = report["primary_metric"]
    labelled = list(zip(_bar_labels(report["cells"], report["columns"]), report["cells"], strict=True))
    order = list(dict.fromkeys(label for label, _ in labelled))
    labelled.sort(key=lambda pair: order.index(pair[0]))
    labels, cells = [label for label, _ in labelled], [cell for _, cell in labelled]
    data_options = list(dict.fromkeys(str(c["choices"]["data"]) for c in cells))
    colour = {option: PALETTE[i % len(PALETTE)] for i, option in enumerate(data_options)}
    fig, ax = plt.subplots(figsize=(max(5.5, 1.25 * len(cells) + 2.5), 4.8), dpi=150)
    top = report["reference"][metric]
    for x, cell in enumerate(cells):
        fill = colour[str(cell["choices"]["data"])]
        top = max(top, _draw_bar(ax, x, cell["metrics"][metric], fill, cell["n"]))
    reference = report["reference"]
    ax.axhline(reference[metric], color="black", linestyle="--", linewidth=1, zorder=1)
    ax.text(
        len(cells) - 0.5,
        reference[metric] + 0.008,
        f"{reference['label']} ({reference[metric]:.2f})",
        ha="right",
        va="bottom",
        fontsize=8,
    )
    for floor, titles, colour_ in floor_lines(report, metric):
        ax.axhline(floor, color=colour_, linestyle=":", linewidth=1.2, zorder=1)
        ax.text(
            -0.5,
            floor + 0.008,
            f"{' = '.join(titles)} ({floor:.2f})",
            ha="left",
            va="bottom",
            fontsize=7,
            color=colour_,
        )
        top = max(top, floor)
    ax.set_xticks(range(len(cells)), labels, fontsize=8)
    ax.set_xlim(-0.6, len(cells) - 0.4)
    ax.set_ylim(0, min(1.0, top * 1.15 + 0.02))
    ax.set_ylabel("test macro-F1 (threshold tuned on val)")
    ax.set_title(f"Test macro-F1, mean ± std over seeds\n{report['sweep_dir']}", fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour[o]) for o in data_options]
    ax.legend(handles, [f"data={o}" for o in data_options], fontsize=8, loc="upper left", frameon=False)
    ax.grid(axis="y", alpha=0.3, zorder=0)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_paired(report: dict[str, Any], path: str | Path) -> Path:
    """Each comparison's macro- and micro-F1 difference (B − A, points) with its 95% bootstrap interval."""
    comparisons = report["paired"]["comparisons"]
    fig, ax = plt.subplots(figsize=(8.5, 1.6 + 0.45 * len(comparisons)), dpi=150)
    for row, comparison in enumerate(comparisons):
        for offset, (name, colour) in enumerate((("macro_f1", PALETTE[1]), ("micro_f1", PALETTE[2]))):
            d = comparison[name]
            y = -row - 0.18 * offset
            error = [[100 * (d["diff"] - d["low"])], [100 * (d["high"] - d["diff"])]]
            label = name if row == 0 else None
            ax.errorbar(
                100 * d["diff"], y, xerr=error, fmt="o", color=colour, capsize=3, markersize=4, label=label
            )
    ax.axvline(0, color="black", linewidth=1)
    names = [f"{c['b']} vs {c['a']}" for c in comparisons]
    ax.set_yticks([-i - 0.09 for i in range(len(comparisons))], names, fontsize=7)
    ax.set_xlabel("B − A, F1 points (95% paired bootstrap interval)")
    paired = report["paired"]
    ax.set_title(f"Paired differences, {paired['resamples']:,} resamples\n{report['sweep_dir']}", fontsize=9)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="x", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
