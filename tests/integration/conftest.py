"""pytest configuration for the nemockptfs integration suite.

Fixtures:
  nemo     -- a nemofs.Harness bound to the test's tmp_path; checks daemon
              stderr and cleans up mounts/daemons at teardown.
  mounted  -- nemo.mount: ``with mounted(src, *opts) as mnt: ...`` starts
              ``nemockptfs SRC MNT -f -o notify_fd=N,opts``, waits for
              READY=1, yields MNT, unmounts with fusermount3 -u and requires
              exit status 0.
"""

import os
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent / "fixtures"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import nemofs  # noqa: E402


def _fuse_missing():
    missing = []
    if not os.path.exists("/dev/fuse"):
        missing.append("/dev/fuse")
    if shutil.which("fusermount3") is None:
        missing.append("fusermount3")
    return missing


def pytest_report_header(config):
    return ["nemockptfs: %s" % nemofs.daemon_bin(),
            "nemockpt:   %s" % nemofs.cli_bin()]


def pytest_collection_modifyitems(config, items):
    missing = _fuse_missing()
    if missing:
        skip = pytest.mark.skip(reason="FUSE unavailable: missing %s"
                                % ", ".join(missing))
        for item in items:
            item.add_marker(skip)
    if os.geteuid() != 0:
        skip_root = pytest.mark.skip(reason="needs root")
        for item in items:
            if item.get_closest_marker("needs_root"):
                item.add_marker(skip_root)


@pytest.fixture(scope="session", autouse=True)
def private_index_cache(tmp_path_factory):
    """gzip seek indexes persist under $XDG_CACHE_HOME/nemockpt: point it
    (and HOME) at a temporary directory for every daemon and CLI the suite
    starts, so that no test writes to the real home or /var/cache."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    old = {k: os.environ.get(k) for k in ("XDG_CACHE_HOME", "HOME")}
    os.environ["XDG_CACHE_HOME"] = str(cache)
    os.environ["HOME"] = str(cache)
    yield cache
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def nemo(request, tmp_path):
    allow = []
    for m in request.node.iter_markers("allow_stderr"):
        allow.extend(m.args)
    t = request.node.get_closest_marker("nemo_timeout")
    timeout = float(t.args[0]) if t else 90.0
    h = nemofs.Harness(tmp_path, allow=allow, timeout=timeout)
    yield h
    errors = h.finish()
    if errors:
        pytest.fail("teardown: " + "\n".join(errors), pytrace=False)


@pytest.fixture
def mounted(nemo):
    """mounted(src, *opts) -> context manager yielding the mountpoint."""
    return nemo.mount
