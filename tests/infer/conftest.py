"""Fixtures for the inference tests: a real CT (pyradiomics lung1, cropped) as DICOM series, bundle overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import SimpleITK as sitk
import torch

from tests.conftest import REPO_ROOT, skip_or_fail
from tests.infer.helpers import rotation, write_ct_series
from tests.sample_data import pyradiomics_samples  # noqa: F401  (session fixture, cached and locked)

LIVER_BUNDLE = REPO_ROOT / "bundles" / "liver_ct_sat"
THRESHOLD_LEVEL = 0.3  # in the liver bundle's [-100, 250] HU -> [0, 1] window: 5 HU
THRESHOLD_HU = -100 + THRESHOLD_LEVEL * 350
SMALL = ["roi_size=[32,32,32]", "inferer#sw_batch_size=2"]
# the network is built with its default level 0.5; the checkpoint sets THRESHOLD_LEVEL (so loading is checked too)
THRESHOLD_OVERRIDES = ['network_def={"_target_": "tests.infer.helpers.ThresholdNet"}', *SMALL]
TINY_UNET_OVERRIDES = ["network_def#channels=[4,8,16]", "network_def#strides=[2,2]", *SMALL]


@pytest.fixture(scope="session")
def lung_crop(pyradiomics_samples: Path) -> sitk.Image:  # noqa: F811
    """Real chest CT (lung1, int16 HU) cropped to 128x128x24 around the mediastinum: lungs, vessels, soft tissue."""
    img = sitk.ReadImage(str(pyradiomics_samples / "lung1_image.nrrd"))
    x0, y0 = img.GetSize()[0] // 2 - 64, img.GetSize()[1] // 2 - 64
    return sitk.Cast(img[x0 : x0 + 128, y0 : y0 + 128, 12:36], sitk.sitkInt16)


@pytest.fixture(scope="session")
def ct_dicom(lung_crop: sitk.Image, tmp_path_factory) -> tuple[Path, list[str]]:
    """The lung crop as an axial CT DICOM series (shuffled file names): (folder, SOP Instance UIDs by slice)."""
    folder = tmp_path_factory.mktemp("dicom") / "lung1"
    return folder, write_ct_series(lung_crop, folder, patient_id="LUNG1")


@pytest.fixture(scope="session")
def oblique_image(lung_crop: sitk.Image) -> sitk.Image:
    """The same voxels with an oblique direction (25 deg about z, 15 deg about x) and another origin."""
    img = sitk.Image(lung_crop)
    img.SetDirection(rotation(25.0, 15.0).flatten().tolist())
    img.SetOrigin((-31.5, 12.25, -140.0))
    return img


@pytest.fixture(scope="session")
def oblique_dicom(oblique_image: sitk.Image, tmp_path_factory) -> tuple[Path, list[str]]:
    """The oblique image as a DICOM series: (folder, SOP Instance UIDs by slice)."""
    folder = tmp_path_factory.mktemp("dicom_oblique") / "oblique"
    return folder, write_ct_series(oblique_image, folder, patient_id="OBL", seed=1)


@pytest.fixture(scope="session")
def liver_bundle() -> Path:
    """The repository's liver CT bundle (its own configs/inference.json is what the CLI runs)."""
    if not (LIVER_BUNDLE / "configs" / "inference.json").is_file():
        skip_or_fail(f"{LIVER_BUNDLE}/configs/inference.json is missing")
    return LIVER_BUNDLE


@pytest.fixture(scope="session")
def threshold_ckpt(tmp_path_factory) -> Path:
    """Weights of :class:`~tests.infer.helpers.ThresholdNet` in the ``{"model": state_dict}`` layout."""
    p = tmp_path_factory.mktemp("ckpt") / "threshold.pt"
    torch.save({"model": {"level": torch.tensor(THRESHOLD_LEVEL)}}, p)
    return p


@pytest.fixture(scope="session")
def tiny_unet_ckpt(liver_bundle: Path, tmp_path_factory) -> Path:
    """A randomly initialised tiny SATUNet built from the bundle's own network_def (flat state dict)."""
    from monai.bundle import ConfigParser

    from satgate_monai.infer.cli import parse_overrides

    parser = ConfigParser()
    parser.read_config(str(liver_bundle / "configs" / "inference.json"))
    parser.update(parse_overrides(TINY_UNET_OVERRIDES))
    torch.manual_seed(0)
    net = parser.get_parsed_content("network_def")
    p = tmp_path_factory.mktemp("ckpt") / "tiny_unet.pt"
    torch.save(net.state_dict(), p)
    return p
