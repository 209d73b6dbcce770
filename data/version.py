"""The rtdl version, recorded in every cache, checkpoint and output file; setup.cfg reads it
from here. In the bottom layer so that every layer can import it."""

__version__ = "0.1.0"
