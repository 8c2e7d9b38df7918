"""MONAI Deploy application of the liver_ct_sat bundle: Liver segmentation in CT (SAT U-Net).

In the environment of .ci/deploy_env.sh:

    python deploy/liver_ct_sat -i DICOM_STUDY_DIR -o OUT -m bundles/liver_ct_sat
"""

from __future__ import annotations

from satgate_monai.deploy.app import make_app

App = make_app("liver_ct_sat")

if __name__ == "__main__":
    App().run()
