"""Decoders and feature extractors (TSN visual, wav2vec 2.0 audio, weight-free fallbacks)."""
