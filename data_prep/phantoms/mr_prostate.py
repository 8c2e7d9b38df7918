"""Pelvic MR phantom, two channels T2 + ADC, with prostate zones (labels as MSD Task05_Prostate: 1 PZ, 2 TZ).

A synthetic phantom, not patient data. Array axes as :mod:`data_prep.phantoms.ct_liver` (an LPS volume in NIfTI
storage order: axis 0 towards the patient's left, axis 1 towards posterior, axis 2 towards superior); the image is
``(x, y, z, 2)`` int16 with channel 0 a T2-weighted magnitude (arbitrary units, Rician noise, coil bias field) and
channel 1 an ADC map in 1e-6 mm^2/s (smoother, noisier, correlated with T2 through the shared anatomy).

Why it is not a thresholding problem: the peripheral zone's bright T2 overlaps fat and the seminal vesicles, the
transition zone's dark nodular T2 overlaps muscle, and the bias field changes every intensity across the field of
view; a dark focal lesion sometimes sits inside the peripheral zone and keeps its zone label, as in the MSD labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from data_prep.phantoms.shapes import Canvas, erode_xy, random_rotation, rician, smooth_noise
from data_prep.phantoms.volume import PhantomVolume

__all__ = ["PROSTATE_SHAPE", "PROSTATE_SPACING", "prostate_mr_phantom"]

#: default grid: 192 x 192 x 18 voxels of 0.625 x 0.625 x 3.6 mm (120 x 120 x 65 mm; 60 x 60 x 33 voxels at 2 mm)
PROSTATE_SHAPE: tuple[int, int, int] = (192, 192, 18)
PROSTATE_SPACING: tuple[float, float, float] = (0.625, 0.625, 3.6)

_PZ, _TZ, _OTHER = 1, 2, 3


def prostate_mr_phantom(
    rng: np.random.Generator,
    shape: Sequence[int] = PROSTATE_SHAPE,
    spacing: Sequence[float] = PROSTATE_SPACING,
) -> PhantomVolume:
    """Draw one two-channel pelvic MR phantom.

    Args:
        rng: random generator (the case's seed).
        shape: spatial grid size ``(x, y, z)``; the anatomy scales with the in-plane field of view and the z extent.
        spacing: voxel size in mm ``(x, y, z)``.

    Returns:
        :class:`PhantomVolume` with ``image`` int16 ``(x, y, z, 2)`` (T2, ADC) and ``label`` uint8 ``(x, y, z)``
        (0 background, 1 peripheral zone, 2 transition zone).
    """
    if len(shape) != 3 or len(spacing) != 3:
        raise ValueError(f"prostate phantom needs a 3D shape and spacing, got {tuple(shape)} and {tuple(spacing)}")
    cv = Canvas(shape, spacing, fill=(0.0, 0.0), channels=2)
    x, y, z = cv.grid
    fov = min(shape[0] * spacing[0], shape[1] * spacing[1])
    s = fov / 120.0  # in-plane size scale
    lz = shape[2] * spacing[2] / 2.0  # half z extent, mm
    t = smooth_noise(rng, shape, spacing, 3.0 * s)  # fine tissue texture shared by all structures
    full = (slice(None),) * 3

    def paint(sl, m, t2, adc, tag=_OTHER, tex_t2=0.0, tex_adc=0.0):
        if m.size == 0:
            return
        tt = t[sl]
        val = np.stack(np.broadcast_arrays(t2 + tex_t2 * tt, adc + tex_adc * tt), axis=-1)
        cv.paint(sl, m, val, tag)

    fat_t2, fat_adc = rng.uniform(330, 430), rng.uniform(100, 300)
    muscle_t2, muscle_adc = rng.uniform(90, 140), rng.uniform(1250, 1500)
    info: dict = {"fat_t2": fat_t2, "muscle_t2": muscle_t2}

    # body: the lateral edges fall outside the field of view, as in real prostate MRI
    a, b = rng.uniform(85, 100) * s, rng.uniform(62, 75) * s
    yc = rng.uniform(-6, 6) * s
    body = (x / a) ** 2 + ((y - yc) / b) ** 2 < 1.0
    paint(full, np.broadcast_to(body, shape), fat_t2, fat_adc, tex_t2=25.0, tex_adc=60.0)

    def blob(centre, radii, **kw):
        sl, m = cv.blob(rng, centre, radii, **kw)
        if m.size:
            m = m & body[sl[0], sl[1], :]
        return sl, m

    # muscles: obturator internus (lateral), levator ani (sling behind/below), gluteal (posterolateral), rectus
    for side in (-1, 1):
        paint(*blob((side * 40 * s, -2 * s, 0.0), (9 * s, 26 * s, lz * 1.2), lobulation=0.1), muscle_t2, muscle_adc,
              tex_t2=12.0, tex_adc=80.0)
        paint(*blob((side * 45 * s, 48 * s, 0.0), (28 * s, 20 * s, lz * 1.5), lobulation=0.15), muscle_t2 * 1.1,
              muscle_adc, tex_t2=12.0, tex_adc=80.0)
        paint(*blob((side * 8 * s, -60 * s, 0.0), (7 * s, 5 * s, lz * 1.5)), muscle_t2, muscle_adc)
    sl, m = blob((0.0, 20 * s, -0.45 * lz), (30 * s, 22 * s, 0.35 * lz), lobulation=0.1)
    if m.size:
        sling = m & ~erode_xy(m, max(1, round(3 * s / spacing[0])))
        paint(sl, sling, muscle_t2, muscle_adc)

    # bones (dark cortex, fatty marrow): pubic bones in front, ischia behind/below, femoral heads at the sides
    def bone(centre, radii):
        sl, m = blob(centre, radii, lobulation=0.1)
        if m.size:
            paint(sl, m, rng.uniform(15, 40), rng.uniform(100, 300))
            marrow = erode_xy(m, max(1, round(1.5 * s / spacing[0])))
            paint(sl, marrow, fat_t2 * rng.uniform(0.6, 0.9), rng.uniform(300, 600), tex_t2=40.0, tex_adc=100.0)

    for side in (-1, 1):
        bone((side * 14 * s, -38 * s, -0.3 * lz), (11 * s, 7 * s, 0.8 * lz))
        bone((side * 42 * s, 30 * s, -0.8 * lz), (10 * s, 12 * s, 0.6 * lz))
        bone((side * 66 * s, 0.0, 0.5 * lz), (16 * s, 18 * s, 0.9 * lz))
    bone((0.0, 55 * s, 1.1 * lz), (14 * s, 8 * s, 0.6 * lz))  # sacrum/coccyx

    # bladder: bright urine, thin dark wall, above and in front of the prostate
    urine_t2 = rng.uniform(850, 1150)
    sl, m = blob((rng.uniform(-5, 5) * s, -12 * s, lz * rng.uniform(0.85, 1.15)),
                 (rng.uniform(28, 40) * s, rng.uniform(20, 28) * s, lz * rng.uniform(0.5, 0.8)), lobulation=0.15)
    if m.size:
        paint(sl, m, muscle_t2, 1400.0)
        lumen = erode_xy(m, max(1, round(2.5 * s / spacing[0])))
        paint(sl, lumen, urine_t2, rng.uniform(2700, 3100), tex_t2=15.0, tex_adc=60.0)

    # rectum: dark wall, lumen with gas or gel, behind the prostate along z
    rx0 = rng.uniform(-4, 4) * s
    ry0 = rng.uniform(22, 27) * s
    r_rect = rng.uniform(9, 14) * s
    d2 = ((x - rx0 - 0.1 * s * z) / r_rect) ** 2 + ((y - ry0) / (r_rect * 0.8)) ** 2
    rect = np.broadcast_to(d2 < 1.0, shape)
    paint(full, rect, muscle_t2 * 0.9, muscle_adc, tex_t2=10.0)
    lumen = np.broadcast_to(d2 < 0.45, shape)
    gas = rng.random() < 0.5
    paint(full, lumen, 5.0 if gas else rng.uniform(450, 700), rng.uniform(0, 2500) if gas else 2000.0,
          tex_adc=600.0 if gas else 100.0)

    # prostate: whole gland, then the transition zone (anterior-central) inside it; the rest is peripheral zone
    pc = (rng.uniform(-4, 4) * s, rng.uniform(-4, 4) * s, rng.uniform(-0.2, 0.2) * lz)
    pr = (rng.uniform(17, 25) * s, rng.uniform(12, 18) * s, lz * rng.uniform(0.4, 0.6))
    pz_t2, pz_adc = rng.uniform(300, 520), rng.uniform(1450, 1900)
    tz_t2, tz_adc = rng.uniform(140, 260), rng.uniform(1000, 1300)
    info.update(pz_t2=pz_t2, tz_t2=tz_t2)
    rot = random_rotation(rng, (15, 5, 10))
    psl, pmask = blob(pc, pr, rotation=rot, lobulation=0.12)
    paint(psl, pmask, pz_t2, pz_adc, _PZ, tex_t2=30.0, tex_adc=100.0)
    paint(psl, pmask & ~erode_xy(pmask, 1), pz_t2 * rng.uniform(0.35, 0.6), pz_adc, _PZ)  # dark capsule
    growth = rng.uniform(0.55, 0.8)  # benign hyperplasia: the transition zone's share varies a lot
    tc = (pc[0], pc[1] - pr[1] * rng.uniform(0.15, 0.3), pc[2] + pr[2] * rng.uniform(0.0, 0.15))
    tsl, tmask = blob(tc, (pr[0] * growth, pr[1] * growth * 0.9, pr[2] * growth), rotation=rot, lobulation=0.2)
    if tmask.size and pmask.size:
        tz_full = np.zeros(shape, dtype=bool)
        tz_full[tsl] = tmask
        tz = tz_full[psl] & pmask
        nodules = smooth_noise(rng, tz.shape, spacing, 4.0 * s)
        paint(psl, tz, tz_t2 + 60.0 * np.clip(nodules, -1.5, 1.5), tz_adc + 90.0 * nodules, _TZ, tex_t2=20.0)
        # dark pseudo-capsule between the zones (stays TZ), urethra in the middle
        rim = tz & ~erode_xy(tz, 1)
        paint(psl, rim, tz_t2 * 0.6, tz_adc * 0.9, _TZ)
        u_sl, u_m = blob((tc[0], tc[1], tc[2]), (2.0 * s, 2.0 * s, pr[2]), lobulation=0.0)
        if u_m.size:
            u_full = np.zeros(shape, dtype=bool)
            u_full[u_sl] = u_m
            paint(psl, u_full[psl] & tz, rng.uniform(250, 450), 1800.0, _TZ)
    # a focal lesion in the peripheral zone: dark T2, low ADC, keeps the PZ label
    info["lesion"] = False
    if pmask.size and rng.random() < 0.5:
        pz_idx = np.flatnonzero(cv.owner[psl] == _PZ)
        if pz_idx.size:
            i0, i1, i2 = np.unravel_index(rng.choice(pz_idx), pmask.shape)
            centre = [float(g[tuple(sl if k == a else 0 for k in range(3))][(i0, i1, i2)[a]])
                      for a, (g, sl) in enumerate(zip(cv.grid, psl))]
            r = rng.uniform(3, 7) * s
            lsl, lm = cv.blob(rng, centre, (r, r, r), lobulation=0.3)
            if lm.size:
                paint(lsl, lm & (cv.owner[lsl] == _PZ), rng.uniform(120, 200), rng.uniform(650, 950), _PZ)
                info["lesion"] = True

    # seminal vesicles: bright convoluted lobes behind and above the base (look like the PZ)
    for side in (-1, 1):
        sv_c = (side * rng.uniform(10, 16) * s, pc[1] + pr[1] * 0.7, pc[2] + pr[2] * rng.uniform(0.9, 1.3))
        sl, m = blob(sv_c, (rng.uniform(9, 14) * s, 4.5 * s, lz * 0.25), rotation=random_rotation(rng, (5, 5, 25)),
                     lobulation=0.3)
        if m.size:
            m = m & (cv.owner[sl] != _PZ) & (cv.owner[sl] != _TZ)
            paint(sl, m, rng.uniform(450, 700), rng.uniform(1700, 2200), tex_t2=80.0, tex_adc=150.0)

    # neurovascular bundles
    for side in (-1, 1):
        sl, m = blob((pc[0] + side * pr[0] * 0.85, pc[1] + pr[1] * 0.85, pc[2]), (2.5 * s, 2.5 * s, pr[2]),
                     lobulation=0.0)
        if m.size:
            paint(sl, m & (cv.owner[sl] == _OTHER), rng.uniform(150, 600), 1500.0)

    # acquisition: partial volume, coil bias field, Rician noise (T2); blur + Gaussian noise (ADC)
    t2 = ndimage.gaussian_filter(cv.image[..., 0], sigma=(0.7, 0.7, 0.3))
    bias = np.exp(rng.uniform(0.1, 0.3) * smooth_noise(rng, shape, spacing, 60.0 * s))
    coil = 0.75 + rng.uniform(0.2, 0.6) * ((y - yc) / b) ** 2 + rng.uniform(0.0, 0.3) * (x / a) ** 2
    t2 = rician(t2 * bias * coil, rng.uniform(0.015, 0.045) * urine_t2, rng)
    adc = ndimage.gaussian_filter(cv.image[..., 1], sigma=(1.5, 1.5, 0.4))
    adc = adc + rng.normal(0.0, rng.uniform(50, 120), size=shape).astype(np.float32)
    image = np.stack([np.clip(np.rint(t2), 0, 32767), np.clip(np.rint(adc), 0, 32767)], axis=-1).astype(np.int16)
    label = np.zeros(shape, dtype=np.uint8)
    label[cv.owner == _PZ] = 1
    label[cv.owner == _TZ] = 2
    return PhantomVolume(image=image, label=label, spacing=tuple(float(v) for v in spacing), info=info)
