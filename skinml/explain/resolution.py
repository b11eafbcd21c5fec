"""When a class-activation map is too coarse to point at anything.

A CAM has one value per position of the last feature map, then is upsampled
to the image. A ResNet or EfficientNet divides the input side by 32, so at
64 px the map is 2x2: four blocks, each a quarter of the image. Blown up and
smoothed, that still looks like a heatmap with a hot spot, but it cannot say
whether the network looked at the lesion or the ruler beside it. The usual
Grad-CAM resolution is 7x7 (those networks at 224 px); below ``MIN_CAM_SIDE``
positions on either side skinml labels the heatmap as coarse, not a localisation.
"""

from __future__ import annotations

#: fewest feature-map positions per side for a heatmap to count as a localisation
MIN_CAM_SIDE = 7


def coarse_cam_note(height: int, width: int, min_side: int = MIN_CAM_SIDE) -> str | None:
    """``"coarse (2x2 feature map): not a localisation"`` below ``min_side``, else None."""
    if min(int(height), int(width)) >= min_side:
        return None
    return (
        f"coarse ({int(height)}x{int(width)} feature map): not a localisation "
        f"(fewer than {min_side}x{min_side} positions; use a larger input size)"
    )
