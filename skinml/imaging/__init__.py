"""Image decoding, cleaning and quality measures; Pillow and numpy only (no torch)."""

from skinml.imaging.read import (
    DEFAULT_MAX_PIXELS,
    DecodedImage,
    decode_image,
    read_image,
    read_images_report,
    save_clean,
    to_rgb,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DecodedImage",
    "decode_image",
    "read_image",
    "read_images_report",
    "save_clean",
    "to_rgb",
]
