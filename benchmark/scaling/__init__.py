"""Scaling laws: the law registry, objectives, the batched L-BFGS fitting engine, IsoFLOP fits, published fits, fits across sources."""
