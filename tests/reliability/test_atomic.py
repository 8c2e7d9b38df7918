"""The project's one atomic writer (``data_prep.atomic``): all or nothing under the final name."""

from __future__ import annotations

import os
import stat

import pytest

from data_prep.atomic import atomic_path, atomic_write_text, is_temporary, remove_stale_temporaries


def test_a_failed_verify_keeps_the_previous_file(tmp_path):
    final = tmp_path / "mask.nii.gz"
    final.write_bytes(b"previous")

    def refuse(tmp):
        raise ValueError(f"{tmp}: truncated")

    with pytest.raises(ValueError, match="truncated"):
        with atomic_path(final, verify=refuse) as tmp:
            tmp.write_bytes(b"half")
    assert final.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["mask.nii.gz"]  # the temporary is gone


def test_permissions_are_the_replaced_files(tmp_path):
    final = tmp_path / "report.csv"
    final.write_text("old")
    final.chmod(0o640)
    atomic_write_text(final, "new")
    assert final.read_text() == "new" and stat.S_IMODE(final.stat().st_mode) == 0o640


def test_a_new_file_gets_the_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "new.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o644


def test_one_temporary_name_scheme_and_its_cleanup(tmp_path):
    names = []

    class Stop(Exception):
        pass

    with pytest.raises(Stop):
        with atomic_path(tmp_path / "case.nii.gz") as tmp:
            names.append(tmp.name)
            tmp.write_bytes(b"x")
            raise Stop
    assert names[0].startswith(".case.tmp-") and names[0].endswith(".nii.gz") and is_temporary(names[0])
    assert not any(tmp_path.iterdir())
    (tmp_path / names[0]).write_bytes(b"left by a killed run")
    (tmp_path / "kept.nii.gz").write_bytes(b"a result")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [names[0]]
    assert [p.name for p in tmp_path.iterdir()] == ["kept.nii.gz"]
