"""The report's figures (matplotlib, Agg backend): Dice box plots, training curves, channel selection, attention.

Inputs are ``results.json`` and the per-cell figure data (``figure_data.npz``, written by the runner for the first seed
of each variant); every function writes one PNG atomically and returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data_prep.atomic import atomic_path
from satgate_monai.experiments.analysis import GATE_LABELS, NETWORK_LABELS, group_cells, per_case, variant_label
from satgate_monai.experiments.grid import PEERS

__all__ = [
    "dice_boxplot",
    "training_curves",
    "channel_selection",
    "attention_figure",
    "make_figures",
    "gap_curves",
    "selection_histograms",
]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    finally:
        _plt().close(fig)
    return path


def dice_boxplot(cells: Sequence[dict], path: Path) -> Path:
    """Box plot of per-case Dice (averaged over seeds) for every variant, points overlaid."""
    plt = _plt()
    groups = group_cells(cells)
    data = [list(per_case(g, "dice").values()) for g in groups.values()]
    labels = [variant_label(*k).replace(" (MONAI)", "") for k in groups]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(labels) + 1.5), 4.0))
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=35, ha="right")
    rng = np.random.default_rng(0)
    for i, values in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, s=9, alpha=0.5, color="k", zorder=3)
    ax.set_ylabel("Dice per test case (mean over seeds)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Dice per variant (test split)")
    return _save(fig, path)


def training_curves(cells: Sequence[dict], path: Path) -> Path:
    """Training loss and validation Dice per epoch, one row per network, one line per gate (mean over seeds)."""
    plt = _plt()
    groups = group_cells(cells)
    networks = list(dict.fromkeys(n for n, _ in groups))
    if "unet" in networks:  # peers are drawn (dashed) beside the U-Net they are compared with
        networks = [n for n in networks if n not in PEERS]
    fig, axes = plt.subplots(len(networks), 2, figsize=(10, 3.2 * len(networks)), squeeze=False)
    for row, network in enumerate(networks):
        ax_loss, ax_dice = axes[row]
        for (net, gate), group in groups.items():
            peer = net in PEERS and net != network
            if net != network and not (peer and network == "unet"):
                continue
            for key, ax in (("loss", ax_loss), ("val_dice", ax_dice)):
                series: dict[int, list[float]] = {}
                for cell in group:
                    for point in cell.get("curve", []):
                        if point.get(key) is not None:
                            series.setdefault(int(point["epoch"]), []).append(float(point[key]))
                if series:
                    epochs = sorted(series)
                    ax.plot(epochs, [np.mean(series[e]) for e in epochs], marker="o", ms=3,
                            linestyle="--" if peer else "-",
                            label=variant_label(net, gate).replace(" (MONAI)", "") if peer
                            else GATE_LABELS.get(gate, gate))
                    ax.xaxis.get_major_locator().set_params(integer=True)
        ax_loss.set_title(f"{NETWORK_LABELS.get(network, network)}: training loss")
        ax_dice.set_title(f"{NETWORK_LABELS.get(network, network)}: validation Dice")
        for ax in (ax_loss, ax_dice):
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _show(ax, image: np.ndarray, title: str, cmap: str | None = None, vmin=None, vmax=None) -> None:
    if image.ndim == 3:  # (C, H, W) -> RGB, or the first channel in grey
        if image.shape[0] == 3:
            image = np.moveaxis(image, 0, -1)
        else:
            image, cmap = image[0], cmap or "gray"
    ax.imshow(image.astype(np.float32), cmap=cmap if image.ndim == 2 else None, vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def channel_selection(figure_data: dict, path: Path, title: str, n_show: int = 4) -> Path:
    """The paper's Fig. 5: skip features before and after selection, with their weights.

    Columns: the ``n_show`` channels with the largest selection weight and the ``n_show`` with the smallest (switched
    off when their weight is 0). Rows: ``f_c`` before selection, ``f_c * trelu(w_c)`` after (same colour scale per
    channel). Last row: the sorted weights of every gate.
    """
    plt = _plt()
    feat = np.asarray(figure_data["feat"], dtype=np.float32)  # (C, H, W) finest gate input
    weights = np.asarray(figure_data["weights_0"], dtype=np.float32)
    order = np.argsort(-weights, kind="stable")
    chosen = list(order[:n_show]) + [c for c in order[::-1][:n_show] if c not in order[:n_show]][::-1]
    n_gates = int(figure_data["n_gates"])
    fig = plt.figure(figsize=(1.6 * len(chosen) + 0.5, 6.2))
    grid = fig.add_gridspec(3, len(chosen), height_ratios=[1, 1, 0.9])
    for col, ch in enumerate(chosen):
        vmax = float(np.abs(feat[ch]).max()) or 1.0
        _show(fig.add_subplot(grid[0, col]), feat[ch], f"ch {ch}: w={weights[ch]:.2f}", "magma", 0, vmax)
        _show(fig.add_subplot(grid[1, col]), feat[ch] * weights[ch], "after selection", "magma", 0, vmax)
    ax = fig.add_subplot(grid[2, :])
    for g in range(n_gates):
        w = np.sort(np.asarray(figure_data[f"weights_{g}"]))[::-1]
        ax.plot(np.linspace(0, 1, w.size), w, label=f"skip {g + 1} ({w.size} ch, {100 * np.mean(w == 0):.0f} % off)")
    ax.set_xlabel("channel rank (normalised)")
    ax.set_ylabel("trelu(w)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def attention_figure(images: np.ndarray, labels: np.ndarray, maps: dict[str, np.ndarray], cases: Sequence[str],
                     path: Path, title: str) -> Path:
    """The paper's Fig. 6-7: image, ground truth and each variant's finest attention map, one row per case.

    Args:
        images: ``(K, C, H, W)`` display images in [0, 1].
        labels: ``(K, H, W)`` ground truth.
        maps: ``{variant label: (K, H, W)}`` attention maps on the image grid.
        cases: ``K`` case ids.
    """
    plt = _plt()
    k = len(cases)
    ncols = 2 + len(maps)
    fig, axes = plt.subplots(k, ncols, figsize=(2.3 * ncols, 2.4 * k), squeeze=False)
    for row in range(k):
        _show(axes[row, 0], images[row], f"{cases[row]}")
        _show(axes[row, 1], labels[row], "ground truth", "gray", 0, 1)
        for col, (name, m) in enumerate(maps.items(), start=2):
            lo, hi = float(np.min(m[row])), float(np.max(m[row]))
            _show(axes[row, col], m[row], f"{name}\nattention [{lo:.2f}, {hi:.2f}]", "jet", 0, 1)
            if labels[row].any():
                axes[row, col].contour(labels[row], levels=[0.5], colors="w", linewidths=0.8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _load(cell_dir: Path, cell: dict) -> dict | None:
    name = cell.get("figure_data")
    if not name or not (cell_dir / name).is_file():
        return None
    with np.load(cell_dir / name, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def make_figures(results: dict, out_dir: Path) -> dict[str, str]:
    """Write every figure of the report into ``out_dir/figures``.

    Returns:
        ``{figure title: path relative to out_dir}``.
    """
    out_dir = Path(out_dir)
    cells = results["cells"]
    figures: dict[str, str] = {}

    def add(title: str, path: Path) -> None:
        figures[title] = path.relative_to(out_dir).as_posix()

    add("Dice per variant", dice_boxplot(cells, out_dir / "figures" / "dice_boxplot.png"))
    add("Training curves", training_curves(cells, out_dir / "figures" / "training_curves.png"))
    groups = group_cells(cells)
    first = {k: g[0] for k, g in groups.items()}
    data = {k: _load(out_dir / c["dir"], c) for k, c in first.items()}
    for (network, gate), d in data.items():
        if gate == "sat" and d is not None and "feat" in d:
            title = f"Channel selection, {variant_label(network, gate)} (finest skip, case {d['cases'][0]})"
            add(title, channel_selection(d, out_dir / "figures" / f"channel_selection_{network}.png", title))
    networks = list(dict.fromkeys(n for n, _ in groups))
    for network in networks:
        if network in PEERS and "unet" in networks:
            continue  # peers are shown beside the U-Net they are compared with
        shown = {k: d for k, d in data.items() if d is not None and "attn" in d
                 and (k[0] == network or (network == "unet" and k[0] in PEERS))}
        if not shown:
            continue
        ref = next(iter(shown.values()))
        order = {"at": 0, "sat": 1, "ag": 2}
        maps = {variant_label(*k).replace(" (MONAI)", ""): d["attn"]
                for k, d in sorted(shown.items(), key=lambda kv: order.get(kv[0][1], 9))}
        title = f"Attention maps (finest skip), {NETWORK_LABELS.get(network, network)}"
        add(title, attention_figure(ref["images"], ref["labels"], maps, [str(c) for c in ref["cases"]],
                                    out_dir / "figures" / f"attention_{network}.png", title))
    return figures


def gap_curves(panels: Sequence[tuple[str, dict[str, list[dict]], Sequence[int]]], path: Path) -> Path:
    """One panel per task: each gate's test Dice minus ORG's (mean over paired cases, 95 % bootstrap CI) against the
    kept epochs (log scale); hollow markers where not every seed reached the epoch.

    Args:
        panels: ``[(title, {gate: rows of curves.gap_table}, planned kept epochs (the x ticks))]``.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(4.6 * max(len(panels), 1), 3.6), squeeze=False)
    colors = {"sat": "C3", "at": "C0", "st": "C2"}
    for ax, (title, gaps, epochs) in zip(axes[0], panels):
        for gate, rows in gaps.items():
            if not rows:
                continue
            x = np.array([r["epoch"] for r in rows], dtype=float) * {"sat": 1.0, "at": 0.97, "st": 1.03}[gate]
            y = np.array([r["dice"]["mean_difference"] for r in rows], dtype=float)
            ci = np.array([r["dice"]["ci95"] for r in rows], dtype=float)
            ax.errorbar(x, y, yerr=[y - ci[:, 0], ci[:, 1] - y], color=colors[gate], capsize=3, lw=1.2,
                        label=f"{GATE_LABELS[gate]} − ORG")
            full = np.array([r["complete"] for r in rows])
            ax.scatter(x[full], y[full], color=colors[gate], zorder=3, s=22)
            ax.scatter(x[~full], y[~full], facecolor="white", edgecolor=colors[gate], zorder=3, s=22)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xscale("log")
        if epochs:
            ax.set_xticks(list(epochs), [str(e) for e in epochs])
            ax.set_xticks([], minor=True)
            ax.set_xlim(min(epochs) * 0.8, max(epochs) * 1.25)
        if not any(gaps.values()):
            ax.text(0.5, 0.5, "no kept epoch evaluated yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("epoch (kept checkpoint; hollow: not every seed)")
        ax.set_ylabel("test Dice difference (95 % CI)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def selection_histograms(panels: Sequence[tuple[str, str, dict[int, np.ndarray]]], path: Path) -> Path:
    """One panel per (task, gate): the histogram of the raw selection weights at the draw (epoch 0) and at every kept
    epoch (``counts`` over ``checkpoints.HIST_EDGES``, first/last bins: below/above the edges)."""
    from satgate_monai.experiments.checkpoints import HIST_EDGES

    plt = _plt()
    edges = np.asarray(HIST_EDGES, dtype=float)
    centers = np.concatenate([[edges[0] - 0.05], (edges[:-1] + edges[1:]) / 2, [edges[-1] + 0.05]])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (task, gate, hists) in zip(axes[0], panels):
        cmap = plt.get_cmap("viridis")
        for i, (epoch, counts) in enumerate(hists.items()):
            counts = np.asarray(counts, dtype=float)
            ax.step(centers, counts / max(counts.sum(), 1), where="mid", color=cmap(i / max(len(hists) - 1, 1)),
                    label="draw" if epoch == 0 else f"epoch {epoch}", lw=1.2)
        for v in (0.0, 1.0):
            ax.axvline(v, color="k", lw=0.8, ls=":")
        ax.set_xlabel("raw selection weight w")
        ax.set_ylabel("share of weights")
        ax.set_title(f"{task}: {GATE_LABELS[gate]}", fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
