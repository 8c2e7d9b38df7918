"""Operators of the satgate-monai MONAI Deploy applications.

- :class:`StudySeriesSelectorOperator` is the SDK's ``DICOMSeriesSelectorOperator`` with its documented extension
  point, ``filter``, replaced by :mod:`data_prep.series_selection`: the same rules text (the bundle's
  ``series_selection``), plus what the SDK's own filter does not do: localizer-only series never qualify, a tie is
  refused instead of taking the first series in load order, and the choice with its reasons is logged. It chooses
  from the datasets the SDK's ``DICOMDataLoaderOperator`` parsed (each file's one parse): no file is read again.
- :class:`SATSegmentationOperator` runs the chosen series through the project's own case pipeline
  (:func:`satgate_monai.infer.pipeline.run_case`): data_prep's validated reader (stacking the chosen series from the
  SDK's datasets, taken by its SeriesInstanceUID, not chosen again), the bundle layer's case engine
  (:mod:`satgate_monai.bundle.engine`: working grid, probabilities linearly back to the source grid, argmax, label
  steps), the DICOM-SEG written frame by frame against the source instances. It replaces the SDK's
  ``DICOMSeriesToVolumeOperator`` + ``MonaiBundleInferenceOperator`` + ``DICOMSegmentationWriterOperator`` chain,
  whose bundle operator needs a TorchScript ``model.ts`` and whose grid moves with the stored precision of the
  geometry; so the application's mask and SEG are those of the CLI, ``monai.bundle run`` and MONAI Label.
"""

from __future__ import annotations

import logging
from pathlib import Path

from monai.deploy.core import Fragment, Operator, OperatorSpec
from monai.deploy.core.domain.dicom_series_selection import SelectedSeries, StudySelectedSeries
from monai.deploy.operators.dicom_series_selector_operator import DICOMSeriesSelectorOperator

from data_prep.dicom import choose_series

__all__ = ["StudySeriesSelectorOperator", "SATSegmentationOperator"]

logger = logging.getLogger(__name__)


def _datasets(series) -> dict[str, object]:
    """The SDK's parsed datasets of ``series`` by file: the one parse of each file, reused by the selection and the
    reader (no file is read again)."""
    out = {}
    for inst in series.get_sop_instances():
        ds = inst.get_native_sop_instance()
        out[str(ds.filename)] = ds
    return out


class StudySeriesSelectorOperator(DICOMSeriesSelectorOperator):
    """Selects one series per study with :mod:`data_prep.series_selection`.

    Named input ``dicom_study_list`` (from ``DICOMDataLoaderOperator``); named output ``study_selected_series_list``
    (one :class:`StudySelectedSeries` per study, whose one selection is named by the reason for the choice).

    Args:
        fragment: the application.
        selection_rules: the rules (dict; None: the module's default rules).
        series_uid: a SeriesInstanceUID to use whatever the rules say.
    """

    def __init__(self, fragment: Fragment, *args, selection_rules: dict | None = None, series_uid: str | None = None,
                 **kwargs) -> None:
        self._selection_rules = selection_rules
        self._series_uid = series_uid or None
        super().__init__(fragment, *args, rules="", all_matched=False, **kwargs)

    def filter(self, selection_rules, dicom_study_list, all_matched: bool = False,
               sort_by_sop_instance_count: bool = False) -> list[StudySelectedSeries]:
        """One selected series per study (the SDK's rules argument is ignored: the operator's own rules apply).

        Raises:
            ValueError: a study whose series cannot be chosen (the one-line refusal of the selection).
        """
        out = []
        for study in dicom_study_list or []:
            by_uid = {str(s.SeriesInstanceUID): s for s in study.get_all_series()}
            parsed = {f: ds for s in by_uid.values() for f, ds in _datasets(s).items()}
            choice = choose_series(list(parsed), f"study {study.StudyInstanceUID}", self._series_uid,
                                   self._selection_rules, parsed=parsed)
            logger.info("study %s: %s", study.StudyInstanceUID, choice.summary())
            selected = StudySelectedSeries(study)
            selected.add_selected_series(SelectedSeries(choice.reason, by_uid[choice.chosen.uid], None))
            out.append(selected)
        return out


class SATSegmentationOperator(Operator):
    """Segments the selected series with a satgate-monai bundle; writes ``<case>_seg.nii.gz``, ``<case>_seg.dcm``
    and ``report.csv`` into the output folder, as ``python -m satgate_monai.infer`` does.

    Named input ``study_selected_series_list``. The case name is the input folder's name (one study per input
    folder; several studies are refused).

    Args:
        fragment: the application.
        bundle_dir: the bundle folder (``configs/``, ``models/model.pt``).
        input_folder: the application's DICOM input folder.
        output_folder: where outputs go (created).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
    """

    def __init__(self, fragment: Fragment, *args, bundle_dir: Path, input_folder: Path, output_folder: Path,
                 device: str = "auto", **kwargs) -> None:
        self.bundle_dir, self.input_folder = Path(bundle_dir), Path(input_folder)
        self.output_folder = Path(output_folder)
        self.device = device
        self.input_name = "study_selected_series_list"
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(self.input_name)  # ticks once per message: once per run

    def compute(self, op_input, op_output, context) -> None:
        from satgate_monai.infer.bundle import BundleRunner
        from satgate_monai.infer.cases import Case, sanitize_name
        from satgate_monai.infer.pipeline import REPORT_NAME, InferenceOptions, run_case
        from satgate_monai.infer.report import write_report

        selected = op_input.receive(self.input_name) or []
        if not selected:
            raise ValueError(f"DICOM input {self.input_folder}: no study with a selectable image series")
        if len(selected) > 1:
            uids = ", ".join(str(s.study.StudyInstanceUID) for s in selected)
            raise ValueError(f"DICOM input {self.input_folder}: {len(selected)} studies ({uids}); give one study per "
                             "input folder")
        series = selected[0].selected_series[0].series
        runner = BundleRunner(self.bundle_dir, device=self.device)
        # the series chosen above (taken by its UID), stacked from the SDK's datasets: no file is parsed again
        parsed = {f: ds for s in selected[0].study.get_all_series() for f, ds in _datasets(s).items()}
        case = Case(name=sanitize_name(self.input_folder.name), path=self.input_folder, is_dicom=True,
                    source_name=self.input_folder.name, parsed=parsed)
        opts = InferenceOptions(formats=("nifti", "dicomseg"), overwrite=True,
                                series_uid=str(series.SeriesInstanceUID))
        self.output_folder.mkdir(parents=True, exist_ok=True)
        report = run_case(runner, case, self.output_folder, opts)
        write_report(self.output_folder / REPORT_NAME, [report])
        if report.status != "ok":
            raise RuntimeError(f"DICOM input {self.input_folder}: {report.error}")
        logger.info("wrote %s in %.2f s", ", ".join(report.outputs), report.seconds)
