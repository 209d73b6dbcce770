"""The bottom layer: facts every layer shares (labels, version, config loading, feature
settings, atomic writes, the ffmpeg binary), dataset metadata readers, the HDF5 feature
cache and the synthetic benchmark renderer."""
