"""Small synthetic ultrasound DICOM files for the tests (uncompressed, explicit VR little endian)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid


def us_region(box: tuple[int, int, int, int], delta_cm: tuple[float, float] = (0.02, 0.02), spatial: int = 1,
              data_type: int = 1, units: int = 3) -> Dataset:
    """One SequenceOfUltrasoundRegions item: ``box`` = (min x0, min y0, max x1, max y1), pixels
    (DICOM's max is inclusive); ``delta_cm`` = PhysicalDeltaX/Y in ``units`` (3: cm)."""
    r = Dataset()
    r.RegionSpatialFormat, r.RegionDataType, r.RegionFlags = spatial, data_type, 0
    r.RegionLocationMinX0, r.RegionLocationMinY0 = box[0], box[1]
    r.RegionLocationMaxX1, r.RegionLocationMaxY1 = box[2], box[3]
    r.PhysicalUnitsXDirection = r.PhysicalUnitsYDirection = units
    r.PhysicalDeltaX, r.PhysicalDeltaY = delta_cm
    return r


def write_us_dicom(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int | None = None,
                   pixel_data: bool = True, **tags: object) -> Path:
    """Write ``pixels`` (2-D grey, (frames, H, W) or (H, W, 3)) as an ultrasound DICOM with the
    header elements ``tags``; ``pixel_data=False`` leaves the pixel data out (a broken file)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = UltrasoundImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "US"
    if pixel_data:
        ds.set_pixel_data(pixels, photometric, bits_stored or pixels.dtype.itemsize * 8, generate_instance_uid=False)
    else:
        ds.Rows, ds.Columns = pixels.shape[-2:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    for k, v in tags.items():
        setattr(ds, k, v)
    ds.save_as(path, enforce_file_format=True)
    return path


#: An invented patient name that must never leak into messages.
SECRET = "Zebedee^Quarrington"


def pydicom_file(name: str) -> Path:
    """A pydicom test file present locally (never downloaded), else skip."""
    import pytest
    from pydicom.data import get_testdata_file

    p = get_testdata_file(name, download=False)
    if p is None or not Path(p).is_file():
        pytest.skip(f"pydicom test file {name} is not available offline (it is in pydicom-data)")
    return Path(p)


def write_dicom(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int | None = None,
                pixel_data: bool = True, **tags: object) -> Path:
    """A minimal ultrasound DICOM of ``pixels`` whose header names the invented patient SECRET."""
    tags = {"PatientName": SECRET, "PatientID": "QX-99887766", **tags}
    return write_us_dicom(path, pixels, photometric, bits_stored, pixel_data, **tags)


def ramp(h: int = 60, w: int = 80) -> np.ndarray:
    """A (h, w) uint8 test pattern: 3 grey levels per column plus 1 per row."""
    return (np.arange(w, dtype=np.uint16)[None, :] * 3 + np.arange(h, dtype=np.uint16)[:, None]).astype(np.uint8)
