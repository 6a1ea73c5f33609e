"""An example flambe extension: a custom Runnable and a custom component."""

from setuptools import find_packages, setup

setup(
    name="flambe-example-ext",
    version="0.1.0",
    packages=find_packages(),
    install_requires=[],
)
