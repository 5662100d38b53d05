"""Optional bridges to other anomaly-detection frameworks (``pip install "wtflow[anomalib]"``).

Nothing here is imported by ``import wtflow``: each bridge is imported by its own module path, e.g.
``from wtflow.integrations.anomalib import WTFlow``, so the core install never pulls in Lightning.
"""
