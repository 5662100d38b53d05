"""Tuning runs behind the detectors' defaults (see README.md in this folder)."""
