"""The one case engine: a case and a bundle in, probabilities on the working grid and the label map on the source
grid out, then the bundle's declared label post-processing.

``python -m monai.bundle run`` (the bundle's ``engine`` id), the inference CLI and the MONAI Deploy application
(:mod:`satgate_monai.infer.bundle`) and the MONAI Label app (:mod:`satgate_monai.label.app.infer`) all take these
steps from here:

1. :meth:`CaseEngine.preprocess`: the working grid of the case, then the bundle's ``intensity`` transforms. A volume
   (3D bundles, ``pixdim``): the grid of :mod:`~satgate_monai.bundle.engine.grid`, the source linearly resampled
   onto it slab by slab. A picture (2D bundles, ``image_size``): loaded with the bundle's ``loading`` transforms,
   resized to the declared image size (bilinear with anti-aliasing, as ``Resized``);
2. the network through the bundle's inferer (:meth:`CaseEngine.infer`; the CLI runs its own network stage for its
   ensembles, precisions, backends and attention maps, on the same input);
3. :meth:`CaseEngine.to_source`: the bundle's activation (the ``postprocessing`` steps before its ``AsDiscreted``),
   the probabilities linearly back to the source grid (a picture: bilinear to its own size) and their argmax, then
   the bundle's label steps after ``AsDiscreted`` (keep-largest-component, fill-holes) on the source grid.
   ``Invertd`` and ``SaveImage(d)`` are not run: step 3 is what they compute, and writing is the caller's
   (:meth:`CaseEngine.run_datalist` writes NIfTI-like volumes with SimpleITK, pictures as ``SaveImaged`` does:
   uint8 PNG, values times ``scale``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import AsDiscrete, AsDiscreted, Compose, Invertd, SaveImage, SaveImaged

from satgate_monai.bundle.engine.case import Case, Picture, read_case, read_picture
from satgate_monai.bundle.engine.grid import (
    labels_on_picture,
    labels_on_source,
    snap_affine,
    to_working_grid,
    working_grid,
)

__all__ = ["CaseEngine", "split_postprocessing"]

logger = logging.getLogger(__name__)

_SKIPPED = (Invertd, SaveImage, SaveImaged)
_DISCRETE = (AsDiscrete, AsDiscreted)


def _steps(transforms: Callable | Sequence[Callable] | None) -> list[Callable]:
    if transforms is None:
        return []
    if isinstance(transforms, Compose):
        return list(transforms.flatten().transforms)
    if isinstance(transforms, Sequence):
        return [s for t in transforms for s in _steps(t)]
    return [transforms]


def split_postprocessing(post: Callable | Sequence[Callable] | None) -> tuple[list[Callable], list[Callable]]:
    """A bundle's ``postprocessing`` as ``(activation steps, label steps)``: the steps before and after its first
    ``AsDiscrete(d)``, without ``Invertd``, ``SaveImage(d)`` and ``AsDiscrete(d)`` themselves."""
    steps = [t for t in _steps(post) if not isinstance(t, _SKIPPED)]
    cut = next((i for i, t in enumerate(steps) if isinstance(t, _DISCRETE)), len(steps))
    return steps[:cut], [t for t in steps[cut:] if not isinstance(t, _DISCRETE)]


class CaseEngine:
    """A bundle's inference on one case at a time (see the module docstring).

    Args:
        pixdim: the working voxel size (mm), the bundle's ``pixdim`` (3D bundles).
        intensity: the bundle's ``intensity`` transforms (dictionary transforms on ``"image"``).
        postprocessing: the bundle's ``postprocessing`` (see :func:`split_postprocessing`).
        network: the network (weights loaded); needed by :meth:`infer` only.
        inferer: the bundle's inferer, called ``inferer(x, network)``; needed by :meth:`infer` only.
        axcodes: orientation of the working grid (the bundle's ``axcodes``).
        device: where the network runs.
        amp: autocast around the network.
        image_size: the working size ``(X, Y)`` of a picture, the bundle's ``image_size`` (2D bundles; instead of
            ``pixdim``).
        loading: the bundle's ``loading`` transforms (2D): ``{"image": path}`` -> ``(C, X, Y)`` MetaTensor.

    Raises:
        ValueError: neither or both of ``pixdim`` and ``image_size``, or ``image_size`` without ``loading``.
    """

    def __init__(self, pixdim: Sequence[float] | None = None, intensity: Callable | Sequence[Callable] | None = None,
                 postprocessing: Callable | Sequence[Callable] | None = None, network: torch.nn.Module | None = None,
                 inferer: Callable | None = None, axcodes: str = "RAS", device: str | torch.device = "cpu",
                 amp: bool = False, image_size: Sequence[int] | None = None,
                 loading: Callable | Sequence[Callable] | None = None) -> None:
        if (pixdim is None) == (image_size is None) or (image_size is not None and loading is None):
            raise ValueError(f"give pixdim (3D) or image_size and loading (2D), got pixdim={pixdim}, "
                             f"image_size={image_size}, loading={loading}")
        self.pixdim = None if pixdim is None else tuple(float(p) for p in pixdim)
        self.image_size = None if image_size is None else tuple(int(s) for s in image_size)
        self.loading = Compose(_steps(loading))
        self.axcodes = str(axcodes)
        self.intensity = Compose(_steps(intensity))
        self.activation, self.label_steps = split_postprocessing(postprocessing)
        self.network, self.inferer = network, inferer
        self.device, self.amp = torch.device(device), bool(amp)
        #: ``{input path: SeriesInstanceUID or None}`` of the cases :meth:`run_datalist` read, for run.json
        self.series_uids: dict[str, str | None] = {}

    def read(self, path: str | os.PathLike) -> Case | Picture:
        """The case at ``path``: a :class:`Picture` for a 2D bundle, else a volume (:func:`read_case`)."""
        return read_case(path) if self.image_size is None else read_picture(path, self.loading)

    def grid(self, case: Case) -> tuple[np.ndarray, tuple[int, int, int]]:
        """The case's working grid ``(affine, (X, Y, Z))``."""
        return working_grid(snap_affine(case.affine), case.shape, self.pixdim, self.axcodes)

    def preprocess(self, case: Case | Picture) -> MetaTensor:
        """The network input ``(1, X, Y, Z)`` float32 on the working grid (a picture: ``(C, *image_size)``), after
        the bundle's intensity steps.

        Its meta data hold the source grid (``original_affine``, ``spatial_shape``) and ``filename_or_obj``.
        """
        if isinstance(case, Picture):
            from monai.transforms import Resize

            img = Resize(self.image_size, mode="bilinear", anti_aliasing=True)(case.pixels.float())
            img.meta.update({"spatial_shape": np.asarray(case.shape, dtype=np.int64), "filename_or_obj": case.source})
            out = self.intensity({"image": img})["image"]
            return out if isinstance(out, MetaTensor) else MetaTensor(out, affine=img.affine, meta=img.meta)
        affine, shape = self.grid(case)
        vox = to_working_grid(case.voxels, snap_affine(case.affine), affine, shape)
        meta = {"original_affine": case.affine.copy(), "space": "RAS", "filename_or_obj": case.source,
                "spatial_shape": np.asarray(case.shape, dtype=np.int64), "original_channel_dim": float("nan")}
        img = MetaTensor(torch.from_numpy(vox)[None], affine=torch.as_tensor(affine, dtype=torch.float64), meta=meta)
        out = self.intensity({"image": img})["image"]
        return out if isinstance(out, MetaTensor) else MetaTensor(out, affine=img.affine, meta=img.meta)

    @torch.no_grad()
    def infer(self, image: torch.Tensor) -> torch.Tensor:
        """The inferer's output ``(C, X, Y, Z)`` (float32, CPU) for a preprocessed image ``(1, X, Y, Z)``.

        Raises:
            ValueError: an engine built without a network or inferer.
        """
        if self.network is None or self.inferer is None:
            raise ValueError("this CaseEngine has no network/inferer: give them to run the network")
        self.network.eval()
        x = torch.as_tensor(image)[None].to(self.device)
        with torch.autocast(self.device.type, enabled=self.amp):
            pred = self.inferer(x, self.network)
        if isinstance(pred, (tuple, list)):
            pred = pred[0]
        return torch.as_tensor(pred)[0].float().cpu()

    def probabilities(self, pred: torch.Tensor) -> torch.Tensor:
        """The bundle's activation of the network output ``(C, *S)`` (softmax when it declares none and C > 1)."""
        data = {"pred": torch.as_tensor(pred).float()}
        for t in self.activation:
            data = t(data)
        p = torch.as_tensor(data["pred"]).float()
        if not self.activation and p.shape[0] > 1:
            p = torch.softmax(p, dim=0)
        return p

    def to_source(self, pred: torch.Tensor, case: Case | Picture, grid_affine: np.ndarray | None = None, *,
                  probabilities_out: np.ndarray | None = None) -> np.ndarray:
        """The label map on the source grid, ``(X, Y, Z)`` uint8 (a picture: ``(X, Y)``), from the network output on
        the working grid.

        Args:
            pred: the network output ``(C, X, Y, Z)`` on the case's working grid (logits or log-probabilities: the
                bundle's activation is applied here).
            case: the case.
            grid_affine: the working grid's affine (default: :meth:`grid`).
            probabilities_out: float16 ``(C, Z, Y, X)`` that receives the source-grid probabilities (see
                :func:`~satgate_monai.bundle.engine.grid.labels_on_source`).
        """
        if isinstance(case, Picture):
            labels = labels_on_picture(self.probabilities(pred), case.shape)
        else:
            grid_affine = self.grid(case)[0] if grid_affine is None else np.asarray(grid_affine, dtype=np.float64)
            labels = labels_on_source(self.probabilities(pred), grid_affine, snap_affine(case.affine), case.shape,
                                      probabilities_out=probabilities_out)
        if not self.label_steps:
            return labels
        data = {"pred": MetaTensor(torch.from_numpy(labels)[None], affine=torch.as_tensor(case.affine))}
        for t in self.label_steps:
            data = t(data)
        return np.asarray(torch.as_tensor(data["pred"])[0].cpu().numpy(), dtype=np.uint8)

    def run(self, case: Case | Picture) -> np.ndarray:
        """preprocess -> network -> source grid: the case's label map ``(X, Y, Z)`` (a picture: ``(X, Y)``) uint8."""
        image = self.preprocess(case)
        return self.to_source(self.infer(image), case, image.affine.numpy())

    def run_datalist(self, data: Sequence[dict[str, Any]], output_dir: str | os.PathLike, postfix: str = "seg",
                     ext: str = ".nii.gz", before: Callable | None = None, scale: int | None = None) -> list[Path]:
        """Segment every ``{"image": path}`` item and write ``<output_dir>/<stem>_<postfix><ext>`` (uint8, the source
        grid; written atomically; a picture's mask as ``SaveImaged`` writes it, values times ``scale``). ``before``
        (e.g. the checkpoint loader) is called once first. Each case's SeriesInstanceUID (DICOM) is kept in
        :attr:`series_uids` for ``write_bundle_run``: no file is parsed twice.

        Returns:
            The written files, in order.
        """
        from data_prep.atomic import atomic_path

        if before is not None:
            before()
        out_dir = Path(output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for item in data:
            path = Path(item["image"])
            case = self.read(path)
            self.series_uids[str(item["image"])] = case.series_uid
            labels = self.run(case)
            stem = path.name[: -len("".join(path.suffixes))] if path.suffixes else path.name
            final = out_dir / f"{stem}_{postfix}{ext}"
            with atomic_path(final) as tmp:
                _write(case, labels, tmp, scale, final.suffix)
            logger.info("wrote %s", final)
            written.append(final)
        return written


def _write(case: Case | Picture, labels: np.ndarray, path: Path, scale: int | None, suffix: str) -> None:
    """Write a label map on the case's grid: a volume with SimpleITK (the source's geometry), a picture as
    ``SaveImaged(output_dtype=uint8, scale=scale)`` writes it (``(X, Y)`` -> ``(H, W)``)."""
    if isinstance(case, Picture):
        from monai.data import PILWriter

        writer = PILWriter(output_dtype=np.uint8, scale=scale)
        writer.set_data_array(torch.from_numpy(labels)[None], channel_dim=0)
        from PIL import Image

        writer.write(str(path), format=Image.registered_extensions().get(suffix.lower(), "PNG"))
        return
    import SimpleITK as sitk

    sitk.WriteImage(case.label_image(labels), str(path), True)
