"""Explanations of image-classifier predictions (Grad-CAM overlays).

Imports torch and ``pytorch_grad_cam`` only when called, so that importing
``skinml.explain`` stays cheap.
"""

from skinml.explain.gradcam import (
    METHODS,
    feature_map_size,
    find_target_layer,
    gradcam_maps,
    gradcam_overlays,
    overlay_grid_figure,
    overlay_heatmap,
    reshape_transform_for,
    save_overlay_grid,
)
from skinml.explain.resolution import MIN_CAM_SIDE, coarse_cam_note

__all__ = [
    "METHODS",
    "MIN_CAM_SIDE",
    "coarse_cam_note",
    "feature_map_size",
    "find_target_layer",
    "gradcam_maps",
    "gradcam_overlays",
    "overlay_grid_figure",
    "overlay_heatmap",
    "reshape_transform_for",
    "save_overlay_grid",
]
