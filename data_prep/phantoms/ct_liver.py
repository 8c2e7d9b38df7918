"""Abdominal CT phantom: liver with hypodense lesions (labels as MSD Task03_Liver: 0 background, 1 liver, 2 tumour).

A synthetic phantom, not patient data. Intensities are Hounsfield units (int16). Array axes follow the usual CT
storage order of an LPS volume written to NIfTI: axis 0 runs towards the patient's left, axis 1 towards posterior,
axis 2 towards superior (:func:`data_prep.phantoms.volume.lps_affine`). The liver sits on the patient's right.

Why it is not a thresholding problem: the spleen, kidneys, pancreas, IVC, bowel and muscles are drawn with HU values
drawn around the liver's own (which itself varies from case to case, as contrast phases do), the liver has texture,
vessels and lesions, and noise is correlated like reconstructed CT noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from data_prep.phantoms.shapes import Canvas, erode_xy, random_rotation, smooth_noise
from data_prep.phantoms.volume import PhantomVolume

__all__ = ["LIVER_SHAPE", "LIVER_SPACING", "liver_ct_phantom"]

#: default grid: 200 x 200 x 52 voxels of 0.8 x 0.8 x 2.5 mm (160 x 160 x 130 mm; 80 x 80 x 65 voxels at 2 mm)
LIVER_SHAPE: tuple[int, int, int] = (200, 200, 52)
LIVER_SPACING: tuple[float, float, float] = (0.8, 0.8, 2.5)

# owner tags
_LIVER, _LESION, _OTHER = 1, 2, 3


def _disc(canvas: Canvas, cx: float, cy: float, rx: float, ry: float, z_range: tuple[float, float] | None = None):
    """Elliptic cylinder along axis 2 (optionally limited in z, mm): ``(slices, mask)``."""
    zc = 0.0 if z_range is None else 0.5 * (z_range[0] + z_range[1])
    zh = 1e6 if z_range is None else 0.5 * (z_range[1] - z_range[0])
    slices, (x, y, z) = canvas.box((cx, cy, zc), (rx, ry, zh))
    mask = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1.0
    mask = np.broadcast_to(mask, tuple(s.stop - s.start for s in slices))
    return slices, mask


def liver_ct_phantom(
    rng: np.random.Generator,
    shape: Sequence[int] = LIVER_SHAPE,
    spacing: Sequence[float] = LIVER_SPACING,
) -> PhantomVolume:
    """Draw one abdominal CT phantom.

    Args:
        rng: random generator (the case's seed).
        shape: grid size ``(x, y, z)``; the anatomy scales with the in-plane field of view and the z extent, so tiny
            grids (e.g. ``(48, 48, 16)``) still hold every structure.
        spacing: voxel size in mm ``(x, y, z)``.

    Returns:
        :class:`PhantomVolume` with ``image`` int16 HU of ``shape`` and ``label`` uint8 (0 background, 1 liver,
        2 lesion) of ``shape``; ``info`` holds the drawn HU values (``liver_hu``, ``spleen_hu``, ...).
    """
    if len(shape) != 3 or len(spacing) != 3:
        raise ValueError(f"liver phantom needs a 3D shape and spacing, got {tuple(shape)} and {tuple(spacing)}")
    cv = Canvas(shape, spacing, fill=-1000.0)
    x, y, z = cv.grid
    fov = min(shape[0] * spacing[0], shape[1] * spacing[1])
    lz = shape[2] * spacing[2] / 2.0  # half z extent, mm
    a = fov * rng.uniform(0.40, 0.46)  # body half-width (left-right)
    b = a * rng.uniform(0.66, 0.80)  # body half-depth (antero-posterior)
    s = a / 70.0  # size scale relative to the default body
    zf = z / np.float32(lz)  # -1 (inferior) .. 1 (superior)

    fat_hu = rng.uniform(-120, -80)
    muscle_hu = rng.uniform(45, 65)
    liver_hu = rng.uniform(50, 125)  # unenhanced .. portal venous
    venous = liver_hu > 80
    info = {"liver_hu": liver_hu, "muscle_hu": muscle_hu, "fat_hu": fat_hu}

    # body outline (slightly irregular, wider towards the chest), subcutaneous fat, muscular wall, cavity
    outline_noise = smooth_noise(rng, (shape[0], shape[1], 1), (spacing[0], spacing[1], 1.0), 25.0 * s)
    rho = np.sqrt((x / a) ** 2 + (y / b) ** 2) * (1.0 + 0.025 * outline_noise) / (1.0 + 0.04 * zf)
    t_fat = rng.uniform(4, 12) * s / b
    t_wall = rng.uniform(3, 6) * s / b
    full = (slice(None),) * 3
    cv.paint(full, rho < 1.0, fat_hu, _OTHER)
    cv.paint(full, rho < 1.0 - t_fat, muscle_hu, _OTHER)
    cavity = rho < 1.0 - t_fat - t_wall
    cv.paint(full, cavity, fat_hu + 15, _OTHER)

    # bowel loops: thresholded smooth noise, more of it low in the abdomen; some gas, sometimes oral contrast
    loops = smooth_noise(rng, shape, spacing, 9.0 * s)
    bowel = cavity & (loops > 0.3 + 3.0 * np.clip(zf - 0.1, 0.0, 1.0))
    bowel_hu = rng.uniform(15, 60)
    cv.paint(full, bowel, bowel_hu + 8.0 * loops, _OTHER)
    gas = bowel & (smooth_noise(rng, shape, spacing, 6.0 * s) > 1.2)
    cv.paint(full, gas, -850.0, _OTHER)
    if rng.random() < 0.3:
        cv.paint(full, bowel & (loops > 1.4), rng.uniform(180, 320), _OTHER)

    tissue = smooth_noise(rng, shape, spacing, 4.0 * s)  # parenchymal texture, shared by all organs

    def organ(centre, radii, hu, tag=_OTHER, texture=4.0, **kw):
        sl, m = cv.blob(rng, centre, radii, **kw)
        if m.size:
            m = m & cavity[sl]
            cv.paint(sl, m, hu + tissue[sl] * np.float32(texture), tag)
        return sl, m

    # kidneys (cortex similar to the liver, darker sinus), below the liver on the right
    kidney_hu = liver_hu + rng.uniform(-15, 35)
    info["kidney_hu"] = kidney_hu
    for side, zc in ((-1, rng.uniform(-0.5, -0.2)), (1, rng.uniform(-0.35, 0.0))):
        kc = (side * a * rng.uniform(0.32, 0.42), b * rng.uniform(0.30, 0.45), zc * lz)
        kr = (a * 0.13 * rng.uniform(0.85, 1.15), b * 0.2 * rng.uniform(0.85, 1.15), lz * 0.25 * rng.uniform(0.8, 1.2))
        rot = random_rotation(rng, (10, 10, 25))
        organ(kc, kr, kidney_hu, rotation=rot, lobulation=0.08)
        sinus_c = (kc[0] - side * kr[0] * 0.45, kc[1] - kr[1] * 0.2, kc[2])
        organ(sinus_c, (kr[0] * 0.35, kr[1] * 0.35, kr[2] * 0.5), rng.uniform(0, 25), lobulation=0.2)

    # spleen: left, posterior, high; similar HU
    spleen_hu = liver_hu + rng.uniform(-15, 20)
    info["spleen_hu"] = spleen_hu
    organ(
        (a * rng.uniform(0.42, 0.58), b * rng.uniform(0.15, 0.35), lz * rng.uniform(0.2, 0.55)),
        (a * 0.17 * rng.uniform(0.8, 1.3), b * 0.38 * rng.uniform(0.8, 1.2), lz * 0.3 * rng.uniform(0.8, 1.2)),
        spleen_hu,
        rotation=random_rotation(rng, (10, 10, 35)),
        lobulation=0.15,
    )

    # stomach: left anterior, fluid with an air-fluid level, soft-tissue wall
    st_c = (a * rng.uniform(0.05, 0.3), -b * rng.uniform(0.15, 0.35), lz * rng.uniform(0.35, 0.7))
    st_r = (a * 0.22 * rng.uniform(0.8, 1.2), b * 0.25 * rng.uniform(0.8, 1.2), lz * 0.22 * rng.uniform(0.8, 1.2))
    sl, m = organ(st_c, st_r, muscle_hu, lobulation=0.2)
    if m.size:
        inner = erode_xy(m, 2)
        cv.paint(sl, inner, rng.uniform(0, 30), _OTHER)
        level = st_c[1] - st_r[1] * rng.uniform(0.1, 0.6)
        cv.paint(sl, inner & (cv.grid[1][:, sl[1], :] < level), -900.0, _OTHER)

    # pancreas: a flat oblong strip across the midline, slightly darker than the liver
    organ(
        (a * 0.1, b * rng.uniform(0.05, 0.2), lz * rng.uniform(-0.1, 0.2)),
        (a * 0.35, b * 0.08, lz * 0.08),
        liver_hu + rng.uniform(-25, 5),
        rotation=random_rotation(rng, (5, 5, 20)),
        lobulation=0.25,
    )

    # lung bases (posterior, high) and the heart (above the liver, blood and muscle close to liver HU)
    for side in (-1, 1):
        organ(
            (side * a * 0.45, b * 0.2, lz * rng.uniform(1.0, 1.3)),
            (a * 0.4, b * 0.6, lz * rng.uniform(0.35, 0.6)),
            -850.0,
            texture=30.0,
            lobulation=0.1,
        )
    heart_c = (a * rng.uniform(0.0, 0.2), -b * rng.uniform(0.05, 0.25), lz * rng.uniform(0.95, 1.25))
    heart_r = (a * 0.4 * rng.uniform(0.85, 1.15), b * 0.5 * rng.uniform(0.85, 1.15), lz * rng.uniform(0.3, 0.45))
    sl, m = organ(heart_c, heart_r, liver_hu + rng.uniform(-25, 10), lobulation=0.1)
    if m.size:
        chambers = erode_xy(m, max(1, round(6.0 * s / spacing[0])))
        cv.paint(sl, chambers & m, liver_hu + rng.uniform(-5, 50) if venous else rng.uniform(35, 50), _OTHER)

    # liver: large, wedge-shaped, right upper abdomen, hugging the body wall
    lc = (-a * rng.uniform(0.25, 0.4), -b * rng.uniform(-0.05, 0.15), lz * rng.uniform(0.15, 0.4))
    lr = (a * rng.uniform(0.48, 0.62), b * rng.uniform(0.55, 0.75), lz * rng.uniform(0.4, 0.55))
    lsl, lmask = organ(
        lc,
        lr,
        liver_hu,
        tag=_LIVER,
        texture=rng.uniform(6, 14),
        rotation=random_rotation(rng, (15, 15, 20)),
        taper=-rng.uniform(0.3, 0.6),
        lobulation=0.2,
    )
    # intrahepatic vessels: tubes from the hilum (bright when enhanced, dark otherwise); they stay liver label
    vessel_hu = liver_hu + (rng.uniform(25, 70) if venous else -rng.uniform(10, 30))
    hilum = np.array([lc[0] + lr[0] * 0.35, lc[1] + lr[1] * 0.3, lc[2] - lr[2] * 0.2], dtype=np.float32)
    lx, ly, lzz = (cv.grid[i][tuple(lsl[j] if j == i else slice(None) for j in range(3))] for i in range(3))
    for _ in range(int(rng.integers(3, 7))):
        direction = rng.normal(size=3)
        direction[0] = -abs(direction[0])  # into the right lobe
        direction /= np.linalg.norm(direction)
        length = rng.uniform(0.5, 1.0) * max(lr)
        radius = rng.uniform(1.2, 3.0) * s
        t = np.clip((lx - hilum[0]) * direction[0] + (ly - hilum[1]) * direction[1] + (lzz - hilum[2]) * direction[2],
                    0, length)
        d2 = (lx - hilum[0] - t * direction[0]) ** 2 + (ly - hilum[1] - t * direction[1]) ** 2
        d2 = d2 + (lzz - hilum[2] - t * direction[2]) ** 2
        cv.paint(lsl, lmask & (d2 < radius * radius), vessel_hu, _LIVER)

    # hypodense lesions inside the liver (label 2), some with an enhancing rim
    n_lesions = int(rng.choice([0, 1, 1, 2, 2, 3, 4]))
    idx = np.flatnonzero(lmask) if lmask.size else np.empty(0, dtype=np.int64)
    info["lesions"] = 0
    for _ in range(n_lesions if idx.size else 0):
        i0, i1, i2 = np.unravel_index(rng.choice(idx), lmask.shape)
        centre = (float(lx[i0, 0, 0]), float(ly[0, i1, 0]), float(lzz[0, 0, i2]))
        radius = rng.uniform(3, 14) * s
        sl, m = cv.blob(rng, centre, (radius, radius * rng.uniform(0.7, 1.2), radius * rng.uniform(0.7, 1.2)),
                        lobulation=0.3)
        if not m.size:
            continue
        m = m & (cv.owner[sl] == _LIVER)
        if not m.any():
            continue
        hu = liver_hu - rng.uniform(25, 75)
        cv.paint(sl, m, hu + 6.0 * smooth_noise(rng, m.shape, spacing, 2.0 * s), _LESION)
        if rng.random() < 0.4:
            cv.paint(sl, m & ~erode_xy(m, 1), liver_hu + rng.uniform(5, 30), _LESION)
        info["lesions"] += 1

    # great vessels: aorta (left of midline, in front of the spine), IVC (right, next to the liver, liver-like HU)
    yv = b * rng.uniform(0.5, 0.62)  # vertebral body centre
    rv = 11.0 * s
    aorta_hu = rng.uniform(140, 260) if venous else rng.uniform(35, 50)
    sl, m = _disc(cv, a * 0.07, yv - rv - 8.0 * s, 7.0 * s, 7.0 * s)
    cv.paint(sl, m & cavity[sl], aorta_hu, _OTHER)
    sl, m = _disc(cv, -a * 0.13, yv - rv - 6.0 * s, 7.0 * s, 5.0 * s)
    cv.paint(sl, m & cavity[sl], liver_hu + rng.uniform(-10, 30), _OTHER)

    # back and psoas muscles, spine (vertebral bodies with discs, canal, posterior elements)
    for side in (-1, 1):
        sl, m = _disc(cv, side * 15.0 * s, yv + rv + 10.0 * s, 11.0 * s, 9.0 * s)
        cv.paint(sl, m & (rho[sl] < 1.0 - t_fat), muscle_hu + 5.0 * loops[sl], _OTHER)
        sl, m = _disc(cv, side * (rv + 5.0 * s), yv, 6.0 * s, 7.0 * s, (-lz, 0.2 * lz))
        cv.paint(sl, m, muscle_hu + 5.0 * loops[sl], _OTHER)
    cancellous, cortical = rng.uniform(150, 300), rng.uniform(500, 900)
    sl, m = _disc(cv, 0.0, yv, rv, rv * 0.9)
    zz = cv.grid[2]
    period = rng.uniform(18, 24)
    disc = np.mod(zz - rng.uniform(0, period), period) < 4.0
    cv.paint(sl, m, cortical, _OTHER)
    inner = ndimage.binary_erosion(m[:, :, 0], iterations=max(1, round(1.5 * s / spacing[0])))[:, :, None]
    cv.paint(sl, np.broadcast_to(inner, m.shape), np.where(disc, 80.0, cancellous), _OTHER)
    sl, m = _disc(cv, 0.0, yv + rv + 7.0 * s, 8.0 * s, 7.0 * s)
    cv.paint(sl, m, cortical * 0.8, _OTHER)
    sl, m = _disc(cv, 0.0, yv + rv + 7.0 * s, 4.5 * s, 4.5 * s)
    cv.paint(sl, m, 15.0, _OTHER)
    sl, m = _disc(cv, 0.0, yv + rv + 18.0 * s, 2.5 * s, 8.0 * s)
    cv.paint(sl, m & (rho[sl] < 1.0 - t_fat), cortical * 0.8, _OTHER)

    # ribs: oblique bands in the body wall, absent at the front and low in the abdomen
    theta = np.arctan2(y / b, x / a)
    phi = np.abs(np.angle(np.exp(1j * (theta - np.pi / 2))))  # angular distance from the posterior midline
    rib_rho = 1.0 - t_fat - 0.5 * t_wall
    band = np.abs(rho - rib_rho) < 2.0 * s / b
    pitch = rng.uniform(14, 20)
    ribs = band & (phi > 0.12 * np.pi) & (phi < 0.8 * np.pi) & (zf > -0.3)
    ribs &= np.mod(z + 40.0 * phi, pitch) < pitch * 0.35
    cv.paint(full, ribs, rng.uniform(350, 700), _OTHER)

    # scanner table under the patient
    table_y = b * 1.05 + 6.0 * s
    table = (np.abs(y - table_y - 0.002 * x * x / s) < 1.5 * s) & (np.abs(x) < a * 1.1)
    cv.paint(full, np.broadcast_to(table, shape), 150.0, _OTHER)

    # partial volume, then correlated noise, then quantise to HU
    img = ndimage.gaussian_filter(cv.image, sigma=(0.6, 0.6, 0.3))
    noise_sd = rng.uniform(10, 25)
    noise = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma=(0.8, 0.8, 0.0))
    img += noise * np.float32(noise_sd / max(float(noise.std()), 1e-6))
    image = np.clip(np.rint(img), -1024, 3071).astype(np.int16)
    label = np.zeros(shape, dtype=np.uint8)
    label[cv.owner == _LIVER] = 1
    label[cv.owner == _LESION] = 2
    info["noise_sd"] = noise_sd
    return PhantomVolume(image=image, label=label, spacing=tuple(float(v) for v in spacing), info=info)
