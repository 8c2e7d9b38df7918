"""The inference CLI on a 2D bundle (pictures: PNG, JPEG): the bundle's own ``inference.json`` run in-process, so each
picture goes through the one case engine (:class:`~satgate_monai.bundle.engine.CaseEngine`) exactly as in
``python -m monai.bundle run``, and its mask is written as the bundle writes it (``<stem>_seg.png``, uint8, values
times ``png_scale``), with the bundle's ``run.json`` beside them.

The CLI's volume options (DICOM-SEG, probabilities, precisions, backends, reports) do not apply to pictures.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["PICTURE_SUFFIXES", "pictures_of", "run_pictures"]

logger = logging.getLogger(__name__)

#: picture files a 2D bundle segments
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")


def pictures_of(path: str | os.PathLike, bundle_name: str = "the bundle") -> list[Path]:
    """A picture file, or the pictures directly in a folder (sorted).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a file that is no picture, or a folder without pictures (naming the 2D bundle).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"input not found: {p}")
    found = [p] if p.is_file() else sorted(f for f in p.iterdir() if f.is_file())
    pictures = [f for f in found if f.suffix.lower() in PICTURE_SUFFIXES]
    if not pictures or (p.is_file() and pictures != [p]):
        raise ValueError(f"{bundle_name} is a 2D bundle: it segments pictures ({', '.join(PICTURE_SUFFIXES)}), "
                         f"found none in {p}")
    return pictures


def run_pictures(bundle_dir: str | os.PathLike, input_path: str | os.PathLike, out: str | os.PathLike, *,
                 ckpt: Sequence[str | os.PathLike] | None = None, device: Any = "cpu",
                 overrides: Mapping[str, Any] | None = None) -> list[Path]:
    """Segment the pictures at ``input_path`` with the 2D bundle at ``bundle_dir`` into ``out``.

    Args:
        ckpt: checkpoint file(s) instead of the bundle's (several: its ensemble).
        device: where the network runs.
        overrides: config overrides (``id: value``), as ``monai.bundle run`` takes them.

    Returns:
        The written masks, in input order.

    Raises:
        FileNotFoundError, ValueError: a missing or unusable input, bundle or checkpoint.
    """
    from monai.bundle import ConfigParser

    from satgate_monai.infer.bundle import find_config

    root = Path(bundle_dir).resolve()
    pictures = pictures_of(input_path, root.name)
    out_dir = Path(out).resolve()
    if any(out_dir == p or p in out_dir.parents for p in {Path(input_path).resolve()} if p.is_dir()):
        raise ValueError(f"output folder {out_dir} lies inside the input {input_path}")
    parser = ConfigParser()
    parser.read_config(str(find_config(root, "inference")))
    if (root / "configs" / "metadata.json").is_file():
        parser.read_meta(str(root / "configs" / "metadata.json"))
    parser["bundle_root"] = str(root)
    parser["device"] = f"$torch.device('{device}')"
    parser["output_dir"] = str(out_dir)
    parser["dataset#data"] = [{"image": str(p)} for p in pictures]
    if ckpt:
        parser["checkpoints"] = [str(c) for c in ckpt]
    parser.update(dict(overrides or {}))
    parser.get_parsed_content("initialize")
    results = parser.get_parsed_content("run")  # require_data, the engine's run_datalist, write_bundle_run
    written = next((r for r in results if isinstance(r, list)), [])
    for path in written:
        logger.info("wrote %s", path)
    return written
