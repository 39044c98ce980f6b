"""pytest configuration of the conformance suite (tests/conformance/).

Runs under the venv's python (tests/venv.sh; PyPI torch, safetensors,
transformers, ml_dtypes, megatron-core, modelopt). It reuses the
integration harness (tests/integration/nemofs.py and its conftest's
fixtures `nemo`, `mounted`, the private index cache) and the integration
tests' oracle cutters by importing them: they need only the standard
library, numpy and pytest. The fixtures themselves are written by Debian's
/usr/bin/python3 (torch 1.13) in a subprocess, into a session tmp dir
(test_catalog.fixtures_dir), never imported here.

A skipped test fails the session: nothing in this suite may pass by not
running.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
for p in (HERE, TESTS / "integration", TESTS / "fixtures", TESTS / "unit" / "quant"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


def _integration_conftest():
    spec = importlib.util.spec_from_file_location("nck_integration_conftest",
                                                  TESTS / "integration" / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_ic = _integration_conftest()
nemo = _ic.nemo
mounted = _ic.mounted
private_index_cache = _ic.private_index_cache

from test_catalog import fixtures_dir  # noqa: E402,F401 (session fixture)

_skipped = []


def pytest_report_header(config):
    import importlib.metadata as md
    names = ["torch", "safetensors", "transformers", "tokenizers", "sentencepiece", "ml_dtypes",
             "numpy", "megatron-core", "nvidia-modelopt"]
    return ["nemockptfs: %s" % _ic.nemofs.daemon_bin(),
            "pypi: " + ", ".join("%s %s" % (n, md.version(n)) for n in names)]


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _skipped and session.exitstatus == 0:
        sys.stderr.write("conformance: %d test(s) skipped, which this suite counts as failure:\n  %s\n"
                         % (len(_skipped), "\n  ".join(_skipped)))
        session.exitstatus = 1
