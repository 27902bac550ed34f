from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
version = {}
exec((ROOT / "sanic_trace" / "__init__.py").read_text(encoding="utf-8"), version)

setup(
    name="sanic-trace",
    version=version["__version__"],
    description="Lot-trace queries over an MES data warehouse, streamed with memory bounded by the batch",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["sanic_trace", "sanic_trace.*", "jobs", "jobs.*", "trace_tools", "trace_tools.*"]),
    package_data={"sanic_trace": ["sql/*.sql", "demo/*.sql"], "trace_tools": ["bench/targets.toml"]},
    install_requires=[
        "sanic>=24.6,<26",
        "redis>=5.0,<9",
        # C reply parser that redis-py picks up by itself: reading a 1.4 MB chunk with redis.asyncio
        # goes from ~210 to ~640 MB/s here, which is the job stream's hot path.
        "hiredis>=2.3,<4",
        "oracledb>=2.0,<30",
        "ujson>=5.8,<7",
        "psutil>=5.9,<8",
        # The MSD analysis: per-factor sums over millions of (lot, factor) exposures as bincounts,
        # and its index as compact integer arrays — a new loss-reason filter at the incident's size
        # is answered in well under a second, which Python loops over the same pairs cannot do.
        "numpy>=1.26,<3",
    ],
    extras_require={
        # What trace_tools (`sanic-trace bench` / `loadtest`) needs beyond the service.
        "tools": ["httpx>=0.27,<1"],
        "test": [
            "pytest>=8,<10",
            "pytest-timeout>=2.2,<3",
            "pytest-asyncio>=0.23,<2",
            "sanic-testing>=24.6,<25",
            "httpx>=0.27,<1",
            "sqlglot>=25,<40",
            "ruff>=0.6",
        ],
        # `sanic-trace bench` draws its RSS-over-time plot only when matplotlib is importable.
        "plot": ["matplotlib>=3.7"],
    },
    entry_points={"console_scripts": ["sanic-trace=sanic_trace.cli:main"]},
)
