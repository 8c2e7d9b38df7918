"""benchmarks/capacity.py: the bisection, the bundles' step read from their configs, and the count on the meta device
against the same training step on the CPU."""

from __future__ import annotations

import json

import pytest

from satgate_monai.resources import bundle_path
from tests.benchmarks.loader import load_benchmark


@pytest.fixture(scope="module")
def capacity():
    return load_benchmark("capacity")


@pytest.mark.parametrize("threshold", [0, 1, 2, 3, 7, 8, 9, 100, 4096])
def test_largest_finds_the_last_k_that_fits(capacity, threshold):
    calls = []

    def fits(k):
        calls.append(k)
        return k <= threshold

    assert capacity.largest(fits, limit=4096) == threshold
    assert len(calls) <= 2 * 13 + 2  # doubling then bisection: logarithmic


def test_bundle_setup_is_the_bundles_train_config(capacity):
    for name in ("liver_ct_sat", "prostate_mri_sat", "skin_lesion_sat"):
        config = json.loads((bundle_path(name) / "configs" / "train.json").read_text())
        setup = capacity.bundle_setup(name)
        assert setup.network_def["channels"] == config["network_def"]["channels"]
        assert setup.batch == config["batch_size"] * config["num_samples"]
        assert setup.divisor == 16
    assert capacity.bundle_setup("liver_ct_sat").patch == (96, 96, 96)
    assert capacity.bundle_setup("skin_lesion_sat").patch == (192, 192)  # "@image_size" resolved


def test_meta_count_equals_the_cpu_step_and_sat_needs_less(capacity):
    setup = capacity.bundle_setup("liver_ct_sat")
    peaks = {}
    for gate in ("org", "sat"):
        meta = capacity.step_peak_bytes(setup, gate, (32, 32, 32), 1, "meta")
        cpu = capacity.step_peak_bytes(setup, gate, (32, 32, 32), 1, "cpu")
        assert meta == cpu
        peaks[gate] = meta
    params = sum(p.numel() for p in capacity.Step(setup, "org", "meta").net.parameters()) * 4
    assert peaks["org"] > 3 * params  # parameters, gradients and Adadelta's two state tensors are counted
    assert peaks["sat"] < peaks["org"]


def test_search_on_the_meta_device_is_monotone_and_sat_fits_more(capacity):
    search = capacity.Search(capacity.bundle_setup("liver_ct_sat"), "meta", False)
    budget = search.peak("org", (64, 64, 64), 4)  # ORG fits exactly 64^3 at this budget
    assert search.largest_patch("org", budget) == 64
    assert search.largest_patch("sat", budget) >= 64
    assert search.largest_batch("sat", budget) >= search.largest_batch("org", budget)
