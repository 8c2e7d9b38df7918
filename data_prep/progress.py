"""One progress bar over cases for every data_prep command (tqdm when installed and enabled, else a silent stand-in)."""

from __future__ import annotations

from typing import Any

__all__ = ["case_progress"]


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def case_progress(total: int, desc: str, enabled: bool = True) -> Any:
    """A progress bar over ``total`` cases labelled ``desc``; silent when disabled, empty, or without tqdm."""
    if not enabled or total == 0:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is an io extra
        return _NoBar()
    return tqdm(total=total, unit="case", desc=desc, dynamic_ncols=True)
