"""flambe: a YAML-config-driven experiment runner for PyTorch."""

from setuptools import find_packages, setup

setup(
    name="flambe",
    version="0.5.0",
    description="Run PyTorch experiments from one YAML file: search, schedule, checkpoint, load any part back.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["flambe", "flambe.*"]),
    include_package_data=True,
    install_requires=[
        "torch>=2.1",
        "ruamel.yaml>=0.18",
        "ruamel.yaml.clib>=0.2.7; platform_python_implementation == 'CPython'",
        "click>=8.1",
        "ray[tune]>=2.9",
        "boto3>=1.28",
        "requests>=2.28",
        "sqlalchemy>=2.0",
        "rich>=13",
        "numpy>=1.24",
        "pandas>=2.0",
        "tensorboardX>=2.6",
    ],
    extras_require={
        "optuna": ["optuna>=3.0"],
        "dev": [
            "optuna>=3.0",
            "pytest>=7.4",
            "pytest-timeout>=2.2",
            "moto[server]>=5.0",
            "ruff>=0.4",
            "setuptools>=65",
            "wheel",
            "psycopg[binary]>=3.1",
            "pymysql>=1.1",
        ],
        "sql": ["psycopg[binary]>=3.1", "pymysql>=1.1"],
    },
    entry_points={"console_scripts": ["flambe=flambe.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
