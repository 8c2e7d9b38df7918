"""Run the MONAI Label app's infer task in-process (no server): ``infer_driver.py BUNDLE OUT_DIR IMAGE...``.

Run with the MONAI Label environment's python and this checkout on PYTHONPATH (:func:`tests.label.client.project_env`).
Writes each served label to ``OUT_DIR/<image file name>.nii.gz`` (a PNG/JPEG picture: ``.png``) and prints the
post transforms the task ran, as JSON, on the last line.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from satgate_monai.label.app.infer import SATBundleInferTask


def main(bundle: str, out_dir: str, *images: str) -> None:
    task = SATBundleInferTask(bundle, {})
    for image in images:
        ext = ".png" if Path(image).suffix.lower() in (".png", ".jpg", ".jpeg") else ".nii.gz"
        label_file, _ = task({"image": image, "device": "cpu", "result_extension": ext})
        shutil.copyfile(label_file, Path(out_dir) / f"{Path(image).name}{ext}")
    print(json.dumps([type(t).__name__ for t in task.post_transforms({})]))


if __name__ == "__main__":
    main(*sys.argv[1:])
