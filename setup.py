"""Package discovery only (metadata lives in pyproject.toml).

The top-level ``configs/`` folder is the Hydra config tree. It is installed as
the package ``skinml.configs`` so that a wheel install finds the same configs
as a source checkout; pyproject.toml alone cannot map a folder outside
``skinml/`` into the package while also auto-discovering sub-packages.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["skinml", "skinml.*"]), "skinml.configs"],
    package_dir={"skinml.configs": "configs"},
)
