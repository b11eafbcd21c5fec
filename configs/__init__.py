"""Hydra configuration groups for skinml-train and skinml-risk (installed as ``skinml.configs``)."""
