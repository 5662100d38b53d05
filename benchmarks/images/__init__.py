"""The image pipeline: image folders -> frozen backbone -> feature store -> WT-Flow per category -> anomaly maps
-> image and pixel metrics.

Submodules: ``data`` (dataset readers and tiny synthetic trees), ``metrics`` (image/pixel AUROC, AUPRO, F1-max,
sPRO), ``features`` (timm backbones, feature extraction), ``baselines`` (Gaussian and PatchCore-style baselines).
"""
