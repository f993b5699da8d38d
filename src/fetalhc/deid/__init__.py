"""Stage 2: de-identification. Blank burned-in text in the pixels; strip identifiers from DICOM headers.

The fast path (:func:`deidentify_pixels` with ``ocr=False``) finds text-like connected components
with OpenCV morphology (:mod:`fetalhc.deid.text`): thin high-contrast strokes on a flat
background, grouped horizontally into lines. ``ocr=True`` adds Tesseract on horizontal bands
outside the head area (:mod:`fetalhc.deid.ocr`). Both leave the central head area and every large
component untouched, so the head circumference cannot change. :mod:`fetalhc.deid.header` applies
the DICOM PS3.15 basic profile to headers; :mod:`fetalhc.deid.files` writes de-identified copies.

Notes added to the image record only counts (``deid: ...``), never the text that was read.
Checked on the 854 HC18 training images: the fast path changes 8 of them, none within 5 px of
the reference head ellipse (``benchmarks/deid_benchmark.py``).
"""

from fetalhc.deid.files import deidentify_file
from fetalhc.deid.header import BASIC_PROFILE_CODE, CLEAN_PIXEL_CODE, deidentify_dataset
from fetalhc.deid.ocr import ocr_bands, ocr_word_boxes, ocr_words, tesseract_available
from fetalhc.deid.pixels import deidentify_pixels
from fetalhc.deid.text import DEFAULT_TEXT_PARAMS, TextParams, central_box, find_text_boxes, merge_boxes, texture_mask

__all__ = [
    "BASIC_PROFILE_CODE",
    "CLEAN_PIXEL_CODE",
    "DEFAULT_TEXT_PARAMS",
    "TextParams",
    "central_box",
    "deidentify_dataset",
    "deidentify_file",
    "deidentify_pixels",
    "find_text_boxes",
    "merge_boxes",
    "ocr_bands",
    "ocr_word_boxes",
    "ocr_words",
    "tesseract_available",
    "texture_mask",
]
