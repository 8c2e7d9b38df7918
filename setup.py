"""Build script. Everything is declared in setup.cfg except the one mapping setup.cfg's ``packages = find:`` cannot
express: the package ``satgate_monai.bundles`` is the repository's top-level ``bundles/`` folder (data only, no
link, no copy), so a wheel and an sdist ship the bundles inside the package and a checkout keeps them at the top.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["satgate_monai", "satgate_monai.*", "data_prep", "data_prep.*"]),
              "satgate_monai.bundles"],
    package_dir={"satgate_monai.bundles": "bundles"},
)
