"""The RT-DeepLoc model: fusion encoder, FDN, AICL, MTLR heads, Top-K MIL.

Public entry points: `ModelConfig` (model/config.py) and `build_model`, `RTDeepLoc`,
`RTDeepLocOutput`, `Prediction` (model/rtdeeploc.py).
"""
