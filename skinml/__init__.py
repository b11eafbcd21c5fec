"""skinml: dermatology machine learning from training to the clinic.

The top-level package imports nothing heavy so that the clinician's predictor
(``skinml.predict``) stays importable with only onnxruntime, numpy and Pillow.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("skinml")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
