"""MONAI Deploy application of the prostate_mri_sat bundle: Prostate segmentation in T2-weighted MR (SAT U-Net).

In the environment of .ci/deploy_env.sh:

    python deploy/prostate_mri_sat -i DICOM_STUDY_DIR -o OUT -m bundles/prostate_mri_sat
"""

from __future__ import annotations

from satgate_monai.deploy.app import make_app

App = make_app("prostate_mri_sat")

if __name__ == "__main__":
    App().run()
