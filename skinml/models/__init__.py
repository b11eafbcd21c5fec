"""Image classifiers: any timm backbone, with its preprocessing."""

from skinml.models.factory import create_classifier, preprocessing_for

__all__ = ["create_classifier", "preprocessing_for"]
