"""The RT-DeepLoc model: fusion encoder, FDN, AICL, MTLR heads, Top-K MIL."""
