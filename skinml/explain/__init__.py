"""Explanations of image-classifier predictions (Grad-CAM overlays).

Imports torch and ``pytorch_grad_cam`` only when called, so that importing
``skinml.explain`` stays cheap.
"""

from skinml.explain.gradcam import (
    METHODS,
    find_target_layer,
    gradcam_maps,
    gradcam_overlays,
    overlay_grid_figure,
    overlay_heatmap,
    reshape_transform_for,
    save_overlay_grid,
)

__all__ = [
    "METHODS",
    "find_target_layer",
    "gradcam_maps",
    "gradcam_overlays",
    "overlay_grid_figure",
    "overlay_heatmap",
    "reshape_transform_for",
    "save_overlay_grid",
]
