"""mount.nemockpt helper, mount(8) -t nemockpt, fstab lines, and the
helper-free `mount -t fuse.nemockptfs` route through mount.fuse3."""

import contextlib
import os
import shutil
import tarfile

import pytest

import nemofs
import tarmaker
from nemofs import is_mounted

# mount(8) runs helpers without the caller's PATH; mount.fuse3's /bin/sh
# then falls back to this default search path.
DEFAULT_SH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.fixture
def arc(nemo):
    return tarmaker.write_tar_entries(
        nemo.path("model.nemo"), tarmaker.standard_entries(),
        tarfile.PAX_FORMAT, prefix="./")


def _helper():
    return nemofs.require_executable(nemofs.helper_script(),
                                     "mount helper mount-helpers/"
                                     "mount.nemockpt")


def _check_live(mnt, arc):
    """The mount is complete as soon as the mounting command returned."""
    assert is_mounted(mnt), "not mounted right after the command returned"
    assert nemofs.findmnt(mnt) == (str(arc), "fuse.nemockpt")
    ref = {tarmaker.norm_member_name(n): m.size
           for n, m in tarmaker.member_table(arc).items()}
    _, files, _ = nemofs.walk_tree(mnt / "raw")
    assert files == ref
    with open(mnt / "raw" / "weights" / "__0_0.distcp", "rb") as f:
        assert len(f.read()) == 300_000
    assert nemofs.read_info(mnt)["source"] == str(arc)


@pytest.mark.parametrize("flags", [(), ("-n",), ("-s", "-n", "-v")],
                         ids=["plain", "n", "snv"])
def test_helper_direct(nemo, arc, flags):
    mnt = nemo.mkdir("mnt")
    res = nemo.run([_helper(), arc, mnt, *flags, "-o", "ro,allow_other"],
                   mounts=[mnt])
    assert res.returncode == 0, res.stderr
    _check_live(mnt, arc)
    nemo.unmount_bg(mnt)


def test_helper_fstab_options(nemo, arc):
    mnt = nemo.mkdir("mnt")
    res = nemo.run([_helper(), arc, mnt, "-o",
                    "ro,allow_other,nofail,_netdev,defaults"], mounts=[mnt])
    assert res.returncode == 0, res.stderr
    _check_live(mnt, arc)
    nemo.unmount_bg(mnt)


def _env_without_daemon(path):
    env = dict(os.environ)
    env.pop("NEMOCKPTFS", None)
    env["PATH"] = path
    return env


def test_helper_finds_daemon_next_to_itself(nemo, arc):
    d = nemo.mkdir("bin")
    shutil.copy2(_helper(), d / "mount.nemockpt")
    os.symlink(os.path.abspath(nemofs.daemon_bin()), d / "nemockptfs")
    mnt = nemo.mkdir("mnt")
    res = nemo.run([d / "mount.nemockpt", arc, mnt, "-o", "ro"],
                   env=_env_without_daemon("/usr/bin:/bin"), mounts=[mnt])
    assert res.returncode == 0, res.stderr
    _check_live(mnt, arc)
    nemo.unmount_bg(mnt)


def test_helper_finds_daemon_on_path(nemo, arc):
    d = nemo.mkdir("helper-only")
    shutil.copy2(_helper(), d / "mount.nemockpt")
    bindir = os.path.dirname(os.path.abspath(nemofs.daemon_bin()))
    mnt = nemo.mkdir("mnt")
    res = nemo.run([d / "mount.nemockpt", arc, mnt, "-o", "ro"],
                   env=_env_without_daemon(bindir + ":/usr/bin:/bin"),
                   mounts=[mnt])
    assert res.returncode == 0, res.stderr
    _check_live(mnt, arc)
    nemo.unmount_bg(mnt)


def test_helper_without_daemon_fails(nemo, arc):
    if shutil.which("nemockptfs", path="/usr/bin:/bin"):
        pytest.skip("a nemockptfs is installed in /usr/bin or /bin")
    d = nemo.mkdir("helper-only")
    shutil.copy2(_helper(), d / "mount.nemockpt")
    mnt = nemo.mkdir("mnt")
    res = nemo.run([d / "mount.nemockpt", arc, mnt, "-o", "ro"],
                   env=_env_without_daemon("/usr/bin:/bin"), mounts=[mnt])
    assert res.returncode != 0
    assert "nemockptfs" in res.stderr
    assert not is_mounted(mnt)


def test_helper_propagates_daemon_errors(nemo):
    bad = nemo.path("broken.nemo")
    bad.write_bytes(tarmaker.rand_bytes(4096, 3))
    mnt = nemo.mkdir("mnt")
    res = nemo.run([_helper(), bad, mnt, "-o", "ro,allow_other"],
                   mounts=[mnt])
    assert res.returncode != 0
    assert str(bad) in res.stderr
    assert not is_mounted(mnt)
    assert nemofs.daemon_pids_for(mnt) == []


# ---------------------------------------------------------------- mount(8)

@contextlib.contextmanager
def _temp_symlink(link, target):
    """Make `link` point to `target` for the duration; restore afterwards.

    A missing link is created and removed again; an existing symlink to
    something else (e.g. left by an interrupted run from another checkout)
    is re-pointed and restored; a regular file (an installed copy) is used
    as it is.
    """
    if os.path.islink(link):
        old = os.readlink(link)
        if os.path.realpath(link) == os.path.realpath(target):
            yield link
            return
        os.unlink(link)
        os.symlink(target, link)
        try:
            yield link
        finally:
            os.unlink(link)
            os.symlink(old, link)
    elif os.path.lexists(link):
        yield link
    else:
        os.symlink(target, link)
        try:
            yield link
        finally:
            os.unlink(link)


@pytest.fixture
def sbin_helper():
    with _temp_symlink("/sbin/mount.nemockpt", os.path.abspath(_helper())) \
            as link:
        yield link


@pytest.mark.needs_root
def test_mount_t_nemockpt(nemo, arc, sbin_helper):
    mnt = nemo.mkdir("mnt")
    res = nemo.run(["mount", "-t", "nemockpt", arc, mnt, "-o",
                    "ro,allow_other"], mounts=[mnt])
    assert res.returncode == 0, res.stderr
    _check_live(mnt, arc)
    nemo.unmount_bg(mnt, cmd=["umount", str(mnt)])


@pytest.mark.needs_root
def test_mount_via_fstab_line(nemo, arc, sbin_helper):
    mnt = nemo.mkdir("mnt")
    fstab = nemo.path("fstab")
    fstab.write_text("# test fstab\n%s  %s  nemockpt  ro,allow_other,nofail"
                     "  0 0\n" % (arc, mnt))
    res = nemo.run(["mount", "-T", str(fstab), str(mnt)], mounts=[mnt])
    assert res.returncode == 0, res.stderr
    _check_live(mnt, arc)
    nemo.unmount_bg(mnt, cmd=["umount", str(mnt)])


@pytest.mark.needs_root
def test_mount_t_fuse_nemockptfs(nemo, arc):
    """mount.fuse3 runs `nemockptfs SRC DIR -o ...` found on PATH."""
    daemon = os.path.realpath(nemofs.daemon_bin())
    link = "/usr/local/sbin/nemockptfs"       # first in DEFAULT_SH_PATH
    found = shutil.which("nemockptfs", path=DEFAULT_SH_PATH)
    if found and os.path.realpath(found) != daemon and \
            not os.path.islink(found):
        pytest.skip("another nemockptfs is installed at %s" % found)
    env = nemofs.daemon_env()
    env["PATH"] = os.path.dirname(daemon) + ":" + env.get("PATH", "")
    mnt = nemo.mkdir("mnt")
    with _temp_symlink(found if found and os.path.islink(found) else link,
                       daemon):
        assert os.path.realpath(shutil.which(
            "nemockptfs", path=DEFAULT_SH_PATH)) == daemon
        res = nemo.run(["mount", "-t", "fuse.nemockptfs", arc, mnt,
                        "-o", "ro"], env=env, mounts=[mnt])
        assert res.returncode == 0, res.stderr
        _check_live(mnt, arc)
        nemo.unmount_bg(mnt, cmd=["umount", str(mnt)])
