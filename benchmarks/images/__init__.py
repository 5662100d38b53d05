"""The image pipeline: image folders -> frozen backbone -> feature store -> WT-Flow per category -> anomaly maps
-> image and pixel metrics (``python -m benchmarks.images run|bench``).

Submodules: ``data`` (dataset readers and tiny synthetic trees), ``features`` (timm backbones, feature
extraction into ``wtflow.FeatureStore``), ``baselines`` (Gaussian and PatchCore-style baselines), ``metrics``
(exact image/pixel AUROC, AUPRO, F1-max, sPRO) and ``pixel_stream`` (the same in bounded memory),
``anomalib_models`` (anomalib's detectors on the same splits), ``methods``, ``config``, ``run``, ``flows``,
``evaluate``, ``runfolder``, ``report`` (the harness), ``bench`` (the Table IX analogue).
"""
