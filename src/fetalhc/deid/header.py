"""De-identifying a DICOM header: the PS3.15 Annex E Basic Application Level Confidentiality Profile."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

#: DeidentificationMethodCodeSequence codes (DICOM CID 7050).
BASIC_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
CLEAN_PIXEL_CODE = ("113101", "DCM", "Clean Pixel Data Option")


def deidentify_dataset(ds: Dataset, *, pixels_cleaned: bool = False) -> Dataset:
    """A de-identified copy of ``ds`` (the input is not changed).

    Applies the DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile with the
    ``dicom-anonymizer`` package (its action table comes from the standard): identifying
    elements are removed (X), emptied (Z) or replaced by dummies (D), UIDs are replaced
    consistently, private tags are removed. Any Person Name left anywhere (sequences included)
    is emptied. Sets Patient Identity Removed (0012,0062) = YES and fills De-identification
    Method (0012,0063) and its Code Sequence (0012,0064) with 113100 (and 113101 when
    ``pixels_cleaned``). Burned In Annotation (0028,0301) becomes NO only when
    ``pixels_cleaned`` is true, i.e. the caller has blanked the burned-in text.
    """
    import contextlib
    import copy
    import io

    from dicomanonymizer import anonymize_dataset
    from pydicom.dataset import Dataset as _Dataset

    out = copy.deepcopy(ds)
    with contextlib.redirect_stdout(io.StringIO()):  # the library prints about absent tags
        anonymize_dataset(out, delete_private_tags=True)

    def _blank_pn(dataset: Any, elem: Any) -> None:
        if elem.VR == "PN" and elem.value not in (None, ""):
            elem.value = ""

    out.walk(_blank_pn)
    if hasattr(out, "file_meta") and "SOPInstanceUID" in out:
        out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    out.PatientIdentityRemoved = "YES"
    codes = [BASIC_PROFILE_CODE, *([CLEAN_PIXEL_CODE] if pixels_cleaned else [])]
    out.DeidentificationMethod = "fetalhc: PS3.15 basic profile" + (", clean pixel data" if pixels_cleaned else "")
    items = []
    for value, scheme, meaning in codes:
        item = _Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
        items.append(item)
    out.DeidentificationMethodCodeSequence = items
    if pixels_cleaned:
        out.BurnedInAnnotation = "NO"
    return out
