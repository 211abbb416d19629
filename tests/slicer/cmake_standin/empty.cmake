# Intentionally empty: stand-in for a Slicer SDK include file (see SlicerConfig.cmake).
