"""Dermoscopy-like RGB phantom of a skin lesion with its binary mask (as ISIC 2017 Part 1).

A synthetic phantom, not patient data. The image is ``(H, W, 3)`` uint8, the mask ``(H, W)`` uint8 0/255 (the ISIC
png convention). What makes it a segmentation problem rather than a colour threshold: an irregular, sometimes fuzzy
border, colour variation inside the lesion (light/dark brown, blue-grey, pink regions, pigment network), a skin tone
that varies from case to case and within the image, freckles and small moles outside the lesion (not in the mask),
hair crossing everything, ruler marks, vignetting or a dark dermoscope rim, gel bubbles and JPEG compression.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from data_prep.phantoms.shapes import lobed_blob, mm_grid, smooth_noise
from data_prep.phantoms.volume import PhantomVolume

__all__ = ["SKIN_SIZE", "skin_phantom"]

#: default image size (height, width); each case varies it by up to about +-15 % and picks an aspect ratio
SKIN_SIZE: tuple[int, int] = (192, 256)

_LIGHT_SKIN = np.array([236, 200, 178], dtype=np.float32)
_DARK_SKIN = np.array([140, 96, 72], dtype=np.float32)
_LESION_COLOURS = np.array(
    [
        [150, 100, 70],  # light brown
        [85, 52, 35],  # dark brown
        [105, 100, 125],  # blue-grey
        [190, 120, 115],  # pink / regression
        [50, 32, 28],  # near black
    ],
    dtype=np.float32,
)


def _curve_mask(rng: np.random.Generator, shape: tuple[int, int], width: float, n_points: int = 400) -> np.ndarray:
    """Soft alpha ``(H, W)`` of one hair: a random quadratic Bezier curve crossing the image."""
    h, w = shape
    p0 = np.array([rng.uniform(-0.2, 1.2) * h, rng.uniform(-0.2, 1.2) * w])
    p2 = np.array([rng.uniform(-0.2, 1.2) * h, rng.uniform(-0.2, 1.2) * w])
    p1 = (p0 + p2) / 2 + rng.normal(0, 0.3, 2) * np.array([h, w])
    t = np.linspace(0.0, 1.0, n_points)[:, None]
    pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
    acc = np.zeros(shape, dtype=np.float32)
    r = np.rint(pts).astype(int)
    ok = (r[:, 0] >= 0) & (r[:, 0] < h) & (r[:, 1] >= 0) & (r[:, 1] < w)
    acc[r[ok, 0], r[ok, 1]] = 1.0
    if width > 1.2:
        acc = ndimage.grey_dilation(acc, size=(int(round(width)), int(round(width))))
    return ndimage.gaussian_filter(acc, 0.5)


def skin_phantom(
    rng: np.random.Generator,
    size: Sequence[int] = SKIN_SIZE,
    *,
    vary_size: bool = True,
) -> PhantomVolume:
    """Draw one dermoscopy-like lesion image and its mask.

    Args:
        rng: random generator (the case's seed).
        size: base ``(height, width)`` in pixels.
        vary_size: scale the size by 0.85-1.15 and pick an aspect ratio among 4:3, 3:2 and 1:1 (ISIC images come
            in many sizes); False keeps ``size`` exactly.

    Returns:
        :class:`PhantomVolume` with ``image`` uint8 ``(H, W, 3)``, ``label`` uint8 ``(H, W)`` in {0, 255} and
        ``spacing`` ``(1.0, 1.0)``.
    """
    if len(size) != 2 or min(size) < 16:
        raise ValueError(f"skin phantom size must be (height, width) of at least 16 pixels, got {tuple(size)}")
    h, w = int(size[0]), int(size[1])
    if vary_size:  # same area up to +-15 % in each dimension, aspect 4:3 (most often), 3:2 or 1:1
        area = h * w * rng.uniform(0.85, 1.15) ** 2
        aspect = float(rng.choice([4 / 3, 4 / 3, 3 / 2, 1.0]))
        w = max(16, int(round(np.sqrt(area * aspect))))
        h = max(16, int(round(np.sqrt(area / aspect))))
    shape = (h, w)
    yy, xx = mm_grid(shape, (1.0, 1.0))
    m = float(min(h, w))

    # skin: tone from light to dark (mostly light, as in ISIC), blotchy, a little erythema, fine texture
    tone = rng.uniform(0, 1) ** 1.8
    skin = (1 - tone) * _LIGHT_SKIN + tone * _DARK_SKIN
    low = smooth_noise(rng, shape, (1.0, 1.0), m / 4)
    fine = smooth_noise(rng, shape, (1.0, 1.0), 1.5)
    img = skin[None, None, :] * (1.0 + 0.05 * low[..., None] + 0.02 * fine[..., None])
    red = np.clip(smooth_noise(rng, shape, (1.0, 1.0), m / 3), 0, None)[..., None]
    img = img + rng.uniform(0, 12) * red * np.array([1.0, -0.6, -0.4], dtype=np.float32)

    # lesion: lobed blob with a noisy (fractal-looking) border
    radius = m * rng.uniform(0.15, 0.36)
    centre = (rng.uniform(-0.2, 0.2) * h, rng.uniform(-0.2, 0.2) * w)
    radii = (radius * rng.uniform(0.7, 1.0), radius * rng.uniform(0.8, 1.2))
    rot_angle = rng.uniform(0, np.pi)
    rot = np.array([[np.cos(rot_angle), -np.sin(rot_angle)], [np.sin(rot_angle), np.cos(rot_angle)]], np.float32)
    rho = lobed_blob([yy, xx], centre, radii, rng, lobulation=rng.uniform(0.1, 0.35), rotation=rot)
    rho = rho + rng.uniform(0.04, 0.15) * smooth_noise(rng, shape, (1.0, 1.0), radius / 5)
    rho = rho + rng.uniform(0.0, 0.06) * smooth_noise(rng, shape, (1.0, 1.0), 3.0)
    mask = rho < 1.0
    fuzz = rng.uniform(0.02, 0.15)  # border sharpness, in units of the radius
    alpha = 1.0 / (1.0 + np.exp(np.clip(-(1.0 - rho) / fuzz, -50, 50)))

    # colour inside the lesion: mixture of 2-4 palette colours driven by smooth fields, darker centre or rim
    k = int(rng.integers(2, 5))
    colours = _LESION_COLOURS[rng.choice(len(_LESION_COLOURS), size=k, replace=False)]
    colours = colours * rng.uniform(0.8, 1.15, size=(k, 1)) + (skin - _LIGHT_SKIN) * 0.3
    weights = np.stack([smooth_noise(rng, shape, (1.0, 1.0), radius / rng.uniform(1.5, 4)) for _ in range(k)])
    weights = np.exp(2.0 * weights)
    weights /= weights.sum(axis=0, keepdims=True)
    lesion = np.tensordot(weights, colours, axes=([0], [0]))
    centre_dark = rng.uniform(-0.25, 0.3) * np.clip(1.0 - rho, 0, 1)[..., None]
    lesion = lesion * (1.0 - centre_dark)
    if rng.random() < 0.6:  # pigment network
        period = rng.uniform(4, 8)
        net = (np.sin(xx * 2 * np.pi / period + 2 * fine) * np.sin(yy * 2 * np.pi / period + 2 * low)) > 0.5
        lesion = lesion * (1.0 - rng.uniform(0.1, 0.3) * net[..., None])
    img = img * (1 - alpha[..., None]) + lesion * alpha[..., None]

    # freckles and small moles outside the lesion (distractors; not in the mask)
    n_spots = int(rng.poisson(rng.choice([1, 4, 10])))
    for _ in range(n_spots):
        sc = (rng.uniform(-0.5, 0.5) * h, rng.uniform(-0.5, 0.5) * w)
        sr = rng.uniform(1.0, 0.04 * m + 1.5)
        d = np.sqrt((yy - sc[0]) ** 2 + (xx - sc[1]) ** 2)
        spot = np.clip(sr + 0.5 - d, 0, 1)[..., None] * (~mask)[..., None]
        img = img * (1 - spot * rng.uniform(0.3, 0.7)) + spot * rng.uniform(0.3, 0.7) * _LESION_COLOURS[1]

    # gel bubbles: bright thin rings
    for _ in range(int(rng.poisson(0.7))):
        bc = (rng.uniform(-0.5, 0.5) * h, rng.uniform(-0.5, 0.5) * w)
        br = rng.uniform(2, 0.08 * m + 3)
        d = np.sqrt((yy - bc[0]) ** 2 + (xx - bc[1]) ** 2)
        ring = np.clip(1.0 - np.abs(d - br), 0, 1)[..., None]
        img = img * (1 - 0.5 * ring) + 0.5 * ring * 250.0

    # hair: dark (or occasionally light) curved strands over everything
    n_hair = int(rng.poisson(rng.choice([0.0, 2.0, 6.0, 15.0])))
    if n_hair:
        hair_alpha = np.zeros(shape, dtype=np.float32)
        for _ in range(n_hair):
            hair_alpha = np.maximum(hair_alpha, _curve_mask(rng, shape, rng.uniform(1.0, 2.5)))
        hair_colour = np.array([35, 25, 20], np.float32) if rng.random() < 0.85 else np.array([200, 180, 150])
        img = img * (1 - hair_alpha[..., None]) + hair_alpha[..., None] * hair_colour * rng.uniform(0.7, 1.3)

    # ruler marks along one edge
    if rng.random() < 0.45:
        side = int(rng.integers(4))
        along, across = (xx, yy) if side < 2 else (yy, xx)
        extent_across = (h if side < 2 else w) / 2.0
        edge = across if side % 2 else -across
        step = rng.uniform(5, 9)
        long_every = 5
        pos = np.mod(along - rng.uniform(0, step), step)
        idx = np.floor((along - rng.uniform(0, step)) / step)
        tick_len = np.where(np.mod(idx, long_every) == 0, 0.12 * m, 0.06 * m)
        depth = edge - (extent_across - 0.03 * m - 2)
        ticks = (pos < 1.2) & (depth > -tick_len) & (depth < 0)
        base = np.abs(depth + 1) < 0.8
        ruler = (ticks | base).astype(np.float32)[..., None]
        img = img * (1 - 0.85 * ruler) + 0.85 * ruler * 20.0

    # optics: vignetting, sometimes the dark rim of a contact dermoscope; blur, sensor noise
    r2 = (yy / (h / 2.0)) ** 2 + (xx / (w / 2.0)) ** 2
    img = img * (1.0 - rng.uniform(0.05, 0.4) * r2 / 2.0)[..., None]
    if rng.random() < 0.3:
        rim = np.sqrt(yy**2 + xx**2) / (0.5 * np.hypot(h, w))  # a circle: 1 at the corners
        dark = np.clip((rim - rng.uniform(0.72, 0.95)) / 0.04, 0, 1)[..., None]
        img = img * (1 - dark) + dark * 8.0
    img = ndimage.gaussian_filter(img, sigma=(0.6, 0.6, 0))
    img = img + rng.normal(0, rng.uniform(1.5, 4.0), size=img.shape).astype(np.float32)
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    label = np.where(mask, 255, 0).astype(np.uint8)
    info = {"tone": tone, "hairs": n_hair, "spots": n_spots, "radius": radius}
    return PhantomVolume(image=image, label=label, spacing=(1.0, 1.0), info=info)
