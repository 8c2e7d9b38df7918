"""Vectorised building blocks for the demo phantoms: coordinate grids, lobed blobs, smooth noise, bias fields.

Everything works in millimetres on a regular grid so that shapes keep their physical size whatever the voxel spacing,
and everything draws its randomness from a caller-provided :class:`numpy.random.Generator` (seeded, deterministic).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = [
    "mm_grid",
    "random_rotation",
    "lobed_blob",
    "smooth_noise",
    "rician",
    "Canvas",
    "erode_xy",
]


def mm_grid(shape: Sequence[int], spacing: Sequence[float]) -> list[np.ndarray]:
    """Centred millimetre coordinates of a grid, as broadcastable open arrays.

    Args:
        shape: grid size ``(n0, n1[, n2])``.
        spacing: voxel size in mm, same length as ``shape``.

    Returns:
        One float32 array per axis, shaped to broadcast (``np.ogrid`` style): axis ``a`` has size ``shape[a]`` along
        ``a`` and 1 elsewhere; value 0 at the grid centre.
    """
    if len(shape) != len(spacing):
        raise ValueError(f"shape {tuple(shape)} and spacing {tuple(spacing)} differ in length")
    out = []
    for axis, (n, s) in enumerate(zip(shape, spacing)):
        view = [1] * len(shape)
        view[axis] = int(n)
        out.append(((np.arange(n, dtype=np.float32) - (n - 1) / 2.0) * np.float32(s)).reshape(view))
    return out


def random_rotation(rng: np.random.Generator, max_degrees: Sequence[float]) -> np.ndarray:
    """A 3x3 rotation matrix from small random Euler angles (about axes 0, 1, 2), each in ``[-max, max]`` degrees."""
    ax, ay, az = (np.deg2rad(rng.uniform(-m, m)) for m in max_degrees)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return (rz @ ry @ rx).astype(np.float32)


def lobed_blob(
    grid: Sequence[np.ndarray],
    centre: Sequence[float],
    radii: Sequence[float],
    rng: np.random.Generator,
    *,
    lobulation: float = 0.15,
    rotation: np.ndarray | None = None,
    taper: float = 0.0,
) -> np.ndarray:
    """Normalised "radius" of a smooth, randomly lobed ellipsoid (2D or 3D): ``< 1`` inside, ``1`` on the surface.

    The surface radius in direction ``u`` is ``1 + lobulation * p(u)`` with ``p`` a random polynomial of degree <= 3
    in the components of the unit vector ``u`` (a cheap stand-in for low-order spherical harmonics), so the blob is
    smooth, star-shaped and different for every draw.

    Args:
        grid: open millimetre coordinates from :func:`mm_grid` (2 or 3 arrays).
        centre: blob centre in mm.
        radii: semi-axes in mm (before rotation).
        rng: random generator.
        lobulation: relative amplitude of the surface bumps (0 gives an ellipsoid).
        rotation: optional ``(d, d)`` rotation applied to the blob's axes.
        taper: shrink the non-first axes along the first one: ``(1 + taper * x)`` with ``x`` in ``[-1, 1]``
            (a wedge-like organ such as the liver).

    Returns:
        float32 array broadcast to the full grid shape; ``blob < 1`` is the mask.
    """
    ndim = len(grid)
    if len(centre) != ndim or len(radii) != ndim:
        raise ValueError(f"centre {tuple(centre)} and radii {tuple(radii)} must have {ndim} entries")
    d = [g - np.float32(c) for g, c in zip(grid, centre)]
    if rotation is not None:
        rot = np.asarray(rotation, dtype=np.float32)
        d = [sum(rot[j, i] * d[j] for j in range(ndim)) for i in range(ndim)]
    q = [di / np.float32(r) for di, r in zip(d, radii)]
    if taper:
        scale = np.clip(1.0 + np.float32(taper) * np.clip(q[0], -1.0, 1.0), 0.15, None)
        q = [q[0]] + [qi / scale for qi in q[1:]]
    rho = np.sqrt(sum(qi * qi for qi in q)) + np.float32(1e-6)
    if lobulation:
        u = [qi / rho for qi in q]
        poly = np.zeros_like(rho)
        # random polynomial of degree 1..3 in the direction cosines
        for _ in range(3 * ndim):
            powers = rng.integers(0, 3, size=ndim)
            if powers.sum() == 0:
                continue
            term = np.float32(rng.normal())
            for ui, p in zip(u, powers):
                if p:
                    term = term * ui**p
            poly = poly + term
        poly = poly / np.float32(max(np.abs(poly).max(), 1e-6))
        rho = rho / (1.0 + np.float32(lobulation) * poly)
    return rho.astype(np.float32, copy=False)


def _kernel_matrix(n: int, step_vox: float, count: int) -> np.ndarray:
    """``(n, count)`` row-normalised Gaussian weights from ``count`` nodes (``step_vox`` apart) to ``n`` voxels."""
    pos = np.arange(n, dtype=np.float32)
    nodes = (np.arange(count, dtype=np.float32) - 1.0) * np.float32(step_vox)
    w = np.exp(-0.5 * ((pos[:, None] - nodes[None, :]) / np.float32(0.6 * step_vox)) ** 2)
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def smooth_noise(
    rng: np.random.Generator,
    shape: Sequence[int],
    spacing: Sequence[float],
    scale_mm: float,
) -> np.ndarray:
    """Zero-mean, unit-std random field that varies on a length scale of about ``scale_mm``.

    White noise on a coarse lattice (one node per ``scale_mm``) is interpolated to the grid with separable Gaussian
    weights (one small matrix product per axis): smooth like a wide Gaussian filter, at a fraction of its cost.

    Args:
        rng: random generator.
        shape: output grid size.
        spacing: voxel size in mm.
        scale_mm: correlation length in mm.

    Returns:
        float32 array of ``shape``.
    """
    steps = [max(float(scale_mm) / float(s), 1.0) for s in spacing]
    if max(steps) <= 4.0:  # fine texture: a narrow Gaussian filter of white noise is the cheaper route
        out = ndimage.gaussian_filter(rng.standard_normal(tuple(shape), dtype=np.float32), [0.5 * st for st in steps])
        out -= out.mean()
        out /= max(float(out.std()), 1e-6)
        return out
    counts = [int(np.ceil(n / st)) + 3 for n, st in zip(shape, steps)]
    out = rng.standard_normal(counts).astype(np.float32)
    for axis, (n, st, c) in enumerate(zip(shape, steps, counts)):
        w = _kernel_matrix(int(n), st, c)
        out = np.moveaxis(np.tensordot(w, out, axes=([1], [axis])), 0, axis)
    out -= out.mean()
    out /= max(float(out.std()), 1e-6)
    return np.ascontiguousarray(out, dtype=np.float32)


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of ``signal`` plus complex Gaussian noise of std ``sigma`` per channel (Rician statistics, as MRI)."""
    real = signal + rng.normal(0.0, sigma, size=signal.shape).astype(np.float32)
    imag = rng.normal(0.0, sigma, size=signal.shape).astype(np.float32)
    return np.sqrt(real * real + imag * imag)


class Canvas:
    """A volume (or image) being painted: intensities, an owner map of which structure each voxel belongs to.

    Structures are painted in order, each one overwriting what lies below it; the owner map then gives the exact
    ground truth of what is visible (a later bone or vessel removes those voxels from an organ's label).

    Args:
        shape: grid size.
        spacing: voxel size in mm.
        fill: initial intensity.
        channels: number of intensity channels (``image`` gets a trailing channel axis when > 1).
    """

    def __init__(
        self, shape: Sequence[int], spacing: Sequence[float], fill: float | Sequence[float], channels: int = 1
    ):
        self.shape = tuple(int(n) for n in shape)
        self.spacing = tuple(float(s) for s in spacing)
        self.grid = mm_grid(self.shape, self.spacing)
        self.channels = int(channels)
        full = self.shape if channels == 1 else (*self.shape, channels)
        self.image = np.empty(full, dtype=np.float32)
        self.image[...] = np.asarray(fill, dtype=np.float32)
        self.owner = np.zeros(self.shape, dtype=np.uint8)

    def box(self, centre: Sequence[float], half_extent: Sequence[float]) -> tuple[tuple[slice, ...], list[np.ndarray]]:
        """Index slices of the axis-aligned box ``centre +- half_extent`` (mm, clipped) and its open sub-grid."""
        slices = []
        for n, s, c, h in zip(self.shape, self.spacing, centre, half_extent):
            lo = int(np.floor((c - h) / s + (n - 1) / 2.0))
            hi = int(np.ceil((c + h) / s + (n - 1) / 2.0)) + 1
            slices.append(slice(min(max(lo, 0), n), min(max(hi, 0), n)))
        sub = [
            g[tuple(sl if a == i else slice(None) for a in range(len(self.shape)))]
            for i, (g, sl) in enumerate(zip(self.grid, slices))
        ]
        return tuple(slices), sub

    def blob(
        self,
        rng: np.random.Generator,
        centre: Sequence[float],
        radii: Sequence[float],
        *,
        lobulation: float = 0.15,
        rotation: np.ndarray | None = None,
        taper: float = 0.0,
    ) -> tuple[tuple[slice, ...], np.ndarray]:
        """Boolean mask of a :func:`lobed_blob`, evaluated only inside its bounding box: ``(slices, mask)``."""
        reach = max(radii) * (1.0 + abs(lobulation)) * (1.0 + abs(taper)) * 1.05
        slices, sub = self.box(centre, [reach] * len(self.shape))
        if any(sl.stop <= sl.start for sl in slices):
            return slices, np.zeros([0] * len(self.shape), dtype=bool)
        rho = lobed_blob(sub, centre, radii, rng, lobulation=lobulation, rotation=rotation, taper=taper)
        rho = np.broadcast_to(rho, tuple(sl.stop - sl.start for sl in slices))
        return slices, rho < 1.0

    def paint(
        self,
        slices: tuple[slice, ...],
        mask: np.ndarray,
        value: float | np.ndarray | Sequence[float],
        tag: int,
    ) -> None:
        """Set ``image[slices][mask] = value`` and ``owner[slices][mask] = tag``.

        ``value`` is a scalar, a per-channel sequence, or an array shaped like the box (``(*box, channels)`` for
        several channels).
        """
        if mask.size == 0:
            return
        img = self.image[slices]
        val = np.asarray(value, dtype=np.float32)
        if val.ndim >= mask.ndim:
            val = np.broadcast_to(val, img.shape)[mask]
        img[mask] = val
        self.owner[slices][mask] = tag


def erode_xy(mask: np.ndarray, iterations: int) -> np.ndarray:
    """Erode a 3D (or 2D) mask within each axial plane only; what touches the box edge is not eroded from there.

    A 3D erosion would eat whole slices of structures cut by the top or bottom of a thick-slice volume, and a wall
    would appear where the field of view truncates a structure; in-plane erosion with ``border_value=1`` avoids both.
    """
    if mask.size == 0 or iterations < 1:
        return np.asarray(mask, dtype=bool)
    structure = ndimage.generate_binary_structure(2, 1)
    if mask.ndim == 3:
        structure = structure[:, :, None]
    return ndimage.binary_erosion(mask, structure=structure, iterations=int(iterations), border_value=1) & mask
