"""Dataset metadata readers and the HDF5 feature cache."""
