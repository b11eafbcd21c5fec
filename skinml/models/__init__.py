"""Image classifiers: any timm backbone, with its preprocessing."""

from skinml.models.factory import backbone_provenance, create_classifier, preprocessing_for

__all__ = ["backbone_provenance", "create_classifier", "preprocessing_for"]
