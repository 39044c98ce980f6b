"""Command line and -o options, foreground/background modes, signals."""

import concurrent.futures
import errno
import os
import re
import signal
import stat
import subprocess
import tarfile
import tempfile

import pytest

import nemofs
import tarmaker
from nemofs import is_mounted


@pytest.fixture
def arc(nemo):
    return tarmaker.write_tar_entries(nemo.path("opts.tar"),
                                      tarmaker.standard_entries(),
                                      tarfile.PAX_FORMAT, prefix="./")


def _first_file(raw):
    return raw / "weights" / "__0_0.distcp"


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(nemo, flag):
    res = nemo.run([nemofs.require_executable(nemofs.daemon_bin(), "daemon"),
                    flag])
    assert res.returncode == 0, res.stderr
    out = (res.stdout + res.stderr).strip()
    assert out, "no version output"
    assert "nemockpt" in out.lower()


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help(nemo, flag):
    res = nemo.run([nemofs.require_executable(nemofs.daemon_bin(), "daemon"),
                    flag])
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "usage" in out.lower()
    for word in ("-f", "allow_other", "umask", "notify_fd"):
        assert word in out, word


def test_cli_version_and_help(nemo):
    cli = nemofs.require_executable(nemofs.cli_bin(), "CLI")
    for flag in ("-V", "-h"):
        res = nemo.run([cli, flag])
        assert res.returncode == 0, (flag, res.stderr)
        assert (res.stdout + res.stderr).strip()


@pytest.mark.parametrize("foreground", [True, False], ids=["fg", "bg"])
@pytest.mark.parametrize("opt", ["bogus_option_xyz", "frobnicate=7"])
def test_unknown_option_rejected(nemo, arc, opt, foreground):
    mnt = nemo.mkdir("mnt")
    res = nemo.expect_failure(arc, mnt, opt, foreground=foreground)
    assert res.returncode != 0
    assert opt.split("=")[0] in res.stderr, res.stderr
    assert not is_mounted(mnt)
    assert os.listdir(mnt) == []


def test_fstab_words_accepted(nemo, arc):
    words = ["defaults", "nofail", "_netdev", "auto", "noauto", "user",
             "users"]
    with nemo.mount(arc, *words) as mnt:
        assert os.path.getsize(_first_file(mnt / "raw")) == 300_000


@pytest.mark.parametrize("foreground", [True, False], ids=["fg", "bg"])
def test_rw_accepted_with_warning(nemo, arc, foreground):
    if foreground:
        with nemo.mount(arc, "rw") as mnt:
            with pytest.raises(OSError) as ei:
                os.open(_first_file(mnt / "raw"), os.O_WRONLY)
            assert ei.value.errno == errno.EROFS
        log = nemo.daemon(mnt).log()
    else:
        mnt = nemo.mkdir("mnt")
        res = nemo.run(nemo.command(arc, mnt, ["rw"], flags=()),
                       mounts=[mnt])
        assert res.returncode == 0, res.stderr
        assert is_mounted(mnt)
        nemo.unmount_bg(mnt)
        log = res.stderr
    assert re.search(r"\brw\b", log), \
        "no warning about 'rw' on stderr: %r" % log


@pytest.mark.parametrize("umask", ["022", "027", "077", "0", "0777"])
def test_uid_gid_umask(nemo, arc, umask):
    um = int(umask, 8)
    with nemo.mount(arc, "uid=1234", "gid=2345", "umask=" + umask) as mnt:
        raw = mnt / "raw"
        members = tarmaker.member_table(arc)
        for name, m in members.items():
            st = os.stat(raw / name)
            assert (st.st_uid, st.st_gid) == (1234, 2345), name
            assert stat.S_IMODE(st.st_mode) == \
                nemofs.expected_file_mode(m.mode, um), (name, oct(st.st_mode))
        dirs, _, _ = nemofs.walk_tree(raw)
        for d in dirs | {""}:
            st = os.stat(raw / d)
            assert (st.st_uid, st.st_gid) == (1234, 2345), d
            assert stat.S_IMODE(st.st_mode) == 0o555 & ~um, (d,
                                                             oct(st.st_mode))
        st = os.stat(mnt / "info.json")
        assert (st.st_uid, st.st_gid) == (1234, 2345)
        assert stat.S_IMODE(st.st_mode) == 0o444 & ~um
        st = os.stat(mnt)
        assert (st.st_uid, st.st_gid) == (1234, 2345)
        assert stat.S_IMODE(st.st_mode) == 0o555 & ~um
        # root still reads everything (no default_permissions)
        with open(_first_file(raw), "rb") as f:
            assert len(f.read()) == 300_000


def test_default_owner_is_mounting_user(nemo, arc):
    with nemo.mount(arc) as mnt:
        for p in (mnt, mnt / "info.json", mnt / "raw", _first_file(mnt /
                                                                 "raw")):
            st = os.stat(p)
            assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()), p


def _public_mountpoint():
    """A mountpoint other users can reach (tmp_path is 0700 root)."""
    d = tempfile.mkdtemp(prefix="nemockpt-mnt-", dir="/tmp")
    os.chmod(d, 0o755)
    return d


def _read_as_nobody(path):
    code = ("import os,sys\n"
            "try:\n"
            "    open(sys.argv[1],'rb').read(1); print('OK')\n"
            "except OSError as e:\n"
            "    print('ERRNO', e.errno)\n")
    r = subprocess.run(["/usr/bin/python3", "-c", code, str(path)],
                       user=65534, group=65534, extra_groups=[],
                       capture_output=True, text=True, timeout=30)
    return r.stdout.strip()


@pytest.mark.needs_root
@pytest.mark.parametrize("opts,expect", [
    ((), "ERRNO %d" % errno.EACCES),
    (("allow_other",), "OK"),
    (("allow_other", "default_permissions"), "OK"),
    (("allow_other", "default_permissions", "umask=077"),
     "ERRNO %d" % errno.EACCES),
], ids=["private", "allow_other", "default_permissions", "dp_umask077"])
def test_allow_other_and_default_permissions(nemo, arc, opts, expect):
    mnt = _public_mountpoint()
    try:
        with nemo.mount(arc, *opts, mnt=mnt) as m:
            assert _read_as_nobody(_first_file(m / "raw")) == expect
            # root is unaffected
            with open(_first_file(m / "raw"), "rb") as f:
                assert f.read(3)
    finally:
        os.rmdir(mnt)


def test_max_threads(nemo):
    files = {"f%02d.bin" % i: tarmaker.rand_bytes(300_000 + i, 60 + i)
             for i in range(12)}
    arc = tarmaker.write_tar_entries(
        nemo.path("mt.tar"), [tarmaker.Entry(n, d) for n, d in files.items()],
        tarfile.GNU_FORMAT)
    with nemo.mount(arc, "max_threads=2") as mnt:
        def work(name):
            out = []
            for _ in range(3):
                fd = os.open(mnt / "raw" / name, os.O_RDONLY)
                try:
                    out.append(nemofs.pread_all(fd, 1 << 20, 0))
                finally:
                    os.close(fd)
            return name, out
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            for name, outs in ex.map(work, files):
                assert all(o == files[name] for o in outs), name


def test_ro_and_debug_flag(nemo, arc):
    with nemo.mount(arc, "ro") as mnt:
        assert os.path.getsize(_first_file(mnt / "raw")) == 300_000
    with nemo.mount(arc, flags=("-d",)) as mnt:
        assert os.path.getsize(_first_file(mnt / "raw")) == 300_000
        # -d implies -f: the process we started is the daemon itself.
        d = nemo.daemon(mnt)
        assert d.proc.poll() is None
        assert nemofs.daemon_pids_for(mnt) == [d.pid]


def test_findmnt_source_and_type(nemo, arc, tmp_path):
    with nemo.mount(arc) as mnt:
        src, fstype = nemofs.findmnt(mnt)
        assert src == str(arc)
        assert fstype == "fuse.nemockpt"
    d = tarmaker.write_tree(tmp_path / "dirsrc", tarmaker.standard_entries())
    with nemo.mount(d) as mnt:
        assert nemofs.findmnt(mnt) == (str(d), "fuse.nemockpt")


def test_background_mode(nemo, arc):
    mnt = nemo.mkdir("mnt")
    res = nemo.run(nemo.command(arc, mnt, flags=()), mounts=[mnt])
    assert res.returncode == 0, res.stderr
    # Live right after the command returned.
    assert is_mounted(mnt)
    assert nemofs.findmnt(mnt) == (str(arc), "fuse.nemockpt")
    with open(_first_file(mnt / "raw"), "rb") as f:
        assert len(f.read()) == 300_000
    pid = nemo.bg_daemon(mnt)
    assert pid > 0
    nemo.unmount_bg(mnt)
    assert nemofs.daemon_pids_for(mnt) == []
    bad = nemofs.bad_log_lines(res.stderr, [])
    assert not bad, bad


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT],
                         ids=["SIGTERM", "SIGINT"])
def test_signal_exits_zero_and_unmounts(nemo, arc, sig):
    d = nemo.start(arc)
    assert os.path.getsize(_first_file(d.mnt / "raw")) == 300_000
    rc = nemo.signal_and_wait(d, sig)
    assert rc == 0, "exit status %d after signal %d\n%s" % (rc, sig, d.log())
    assert not is_mounted(d.mnt), "still mounted after signal"
    errors = nemo.check_log(d.log_path, "daemon stderr")
    assert not errors, errors


@pytest.mark.needs_root
def test_umount_command_exits_zero(nemo, arc):
    d = nemo.start(arc)
    assert os.listdir(d.mnt / "raw")
    nemo.stop(d, how="umount")


def test_remount_same_mountpoint(nemo, arc):
    """Unmount leaves the mountpoint reusable for the next daemon."""
    with nemo.mount(arc) as mnt:
        first = set(os.listdir(mnt / "raw"))
    with nemo.mount(arc, mnt=mnt) as mnt2:
        assert set(os.listdir(mnt2 / "raw")) == first


@pytest.mark.parametrize("args", [[], ["only-source.tar"]],
                         ids=["none", "source_only"])
def test_missing_arguments(nemo, args):
    res = nemo.run([nemofs.require_executable(nemofs.daemon_bin(), "daemon")]
                   + args)
    assert res.returncode != 0
    assert res.stderr.strip()


@pytest.mark.parametrize("opt", [
    "uid=abc", "gid=", "umask=8", "umask=abc", "max_threads=-1",
    "notify_fd=abc",
    # Out of the 32-bit id range: must not wrap around (4294967296 -> 0
    # would make every file owned by root).
    "uid=4294967296", "gid=4294967296", "uid=99999999999",
])
def test_invalid_option_values_rejected(nemo, arc, opt):
    mnt = nemo.mkdir("mnt")
    res = nemo.expect_failure(arc, mnt, opt, foreground=False)
    assert opt.split("=")[0] in res.stderr, res.stderr
    assert not is_mounted(mnt)


ODD_NAMES = [
    "megatron_gpt--val_loss=2.34-step=100-consumed_samples=3200.0.nemo",
    "with,comma and space.nemo",
    "back\\slash#hash'quote.nemo",
    "ünïcödé-名前.nemo",
]


@pytest.mark.parametrize("name", ODD_NAMES, ids=["equals", "comma_space",
                                                 "backslash", "unicode"])
def test_source_and_mountpoint_with_odd_characters(nemo, arc, name):
    src = arc.parent / name
    os.link(arc, src)
    mnt = nemo.mkdir("mount point, odd")
    with nemo.mount(src, mnt=mnt) as m:
        source, fstype, _ = nemofs.mountinfo_entry(m)
        assert (source, fstype) == (str(src), "fuse.nemockpt")
        assert nemofs.read_info(m)["source"] == str(src)
        assert os.path.getsize(_first_file(m / "raw")) == 300_000
    # Background mode through the mount helper as well.
    res = nemo.run([nemofs.helper_script(), src, mnt, "-o", "ro"],
                   mounts=[mnt])
    assert res.returncode == 0, res.stderr
    assert nemofs.mountinfo_entry(mnt)[:2] == (str(src), "fuse.nemockpt")
    nemo.unmount_bg(mnt)


def _bdi_read_ahead_kb(mnt):
    st = os.stat(mnt)
    path = "/sys/class/bdi/%d:%d/read_ahead_kb" % (os.major(st.st_dev), os.minor(st.st_dev))
    with open(path) as f:
        return int(f.read())


@pytest.mark.needs_root
@pytest.mark.parametrize("opt, expect", [(None, 512), ("read_ahead_kb=768", 768),
                                         ("read_ahead_kb=0", None)])
def test_read_ahead_kb(nemo, arc, opt, expect):
    with nemo.mount(arc, *([opt] if opt else [])) as mnt:
        got = _bdi_read_ahead_kb(mnt)
        if expect is None:
            # 0 leaves the kernel's own value, whatever this kernel uses.
            assert got not in (512, 768), got
        else:
            assert got == expect
        # The mount still serves data after the tuning.
        assert (mnt / "raw").is_dir()


@pytest.mark.parametrize("opt", ["read_ahead_kb=65537", "read_ahead_kb=x"])
def test_read_ahead_kb_bad_values(nemo, arc, opt):
    mnt = nemo.mkdir("mnt_bad_ra")
    res = nemo.run([nemofs.daemon_bin(), str(arc), str(mnt), "-o", opt])
    assert res.returncode != 0
    assert "read_ahead_kb" in res.stderr
    assert not is_mounted(mnt)
