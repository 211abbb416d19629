"""Reading images from disk: DICOM (what PACS sends) and common raster formats."""

from radassist.io.image import ImageMetadata, Radiograph, WindowPreset
from radassist.io.reader import read_image

__all__ = ["ImageMetadata", "Radiograph", "WindowPreset", "read_image"]
