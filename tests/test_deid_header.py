"""The DICOM header profile (fetalhc.deid.header) on the synthetic corpus's DICOM files."""

from __future__ import annotations

import pytest

pydicom = pytest.importorskip("pydicom")

from deid_corpus import Screen, header_secrets, make_dicom, make_screen  # noqa: E402
from fetalhc.deid import deidentify_dataset  # noqa: E402


@pytest.fixture(scope="module")
def screens() -> list[Screen]:
    return [make_screen(i) for i in range(4)]


IDENTIFYING_TAGS = ("PatientName", "PatientID", "PatientBirthDate", "PatientAddress", "InstitutionName",
                    "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
                    "AccessionNumber", "StudyDate", "StudyTime", "StudyID", "StationName", "DeviceSerialNumber")


def test_deidentify_dataset_basic_profile(tmp_path, screens):
    s = screens[0]
    ds = pydicom.dcmread(make_dicom(tmp_path / "in.dcm", s))
    original_uid = ds.SOPInstanceUID
    out = deidentify_dataset(ds)
    assert str(ds.PatientName).startswith("MARGARETHE")  # the input is not changed
    for tag in ("PatientAddress", "InstitutionAddress"):  # action X: removed
        assert tag not in out
    for tag in IDENTIFYING_TAGS:
        v = str(out.get(tag, "") or "")
        assert not any(sec.decode() in v for sec in header_secrets(s)), tag
    assert out.SOPInstanceUID != original_uid and out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.PatientIdentityRemoved == "YES"
    assert [c.CodeValue for c in out.DeidentificationMethodCodeSequence] == ["113100"]
    assert out.DeidentificationMethodCodeSequence[0].CodingSchemeDesignator == "DCM"
    assert out.BurnedInAnnotation == "YES"  # pixels not cleaned: the flag stays
    clean = deidentify_dataset(ds, pixels_cleaned=True)
    assert clean.BurnedInAnnotation == "NO"
    assert [c.CodeValue for c in clean.DeidentificationMethodCodeSequence] == ["113100", "113101"]
    assert "SequenceOfUltrasoundRegions" in clean  # the pixel size survives
