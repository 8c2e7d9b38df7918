"""Tests of the clinical inference CLI (satgate_monai.infer)."""
