"""The paper's experiments in one command: every network x skip gate x seed through the task bundle.

``python -m satgate_monai.experiments run --task skin --data PREP --out RUN`` trains and evaluates each cell with the
bundle's train/evaluate configs (cached and resumable), then writes ``RUN/results.json``, ``RUN/report.md`` (the
paper's Tables 1-3, switched-off channels, paired Wilcoxon tests, consistency test, attention outside the target) and
``RUN/figures/*.png``. See ``docs/experiments.md``.

Modules: :mod:`~.grid` (cells), :mod:`~.bundle_task` (one cell through the bundle), :mod:`~.runner` (cache, outputs),
:mod:`~.executors` (cells here, in local workers or on a Ray cluster), :mod:`~.stats`, :mod:`~.attention`,
:mod:`~.analysis`, :mod:`~.report`, :mod:`~.paper_tables`, :mod:`~.figures`, :mod:`~.cost`, :mod:`~.cli`. Needs the
``train`` and ``report`` extras (ignite, tensorboard, scipy, matplotlib); ``--ray`` needs the ``cluster`` extra.
"""

from __future__ import annotations

__all__: list[str] = []
