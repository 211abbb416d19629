"""Reading images from disk: DICOM (what PACS sends) and common raster formats, into a
`radassist.image.Radiograph`."""

from radassist.io.reader import read_image

__all__ = ["read_image"]
