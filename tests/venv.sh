#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Creates (or reuses) the virtual environment of the conformance suite and
# prints its python's path on stdout (nothing else goes to stdout).
#
#   tests/venv.sh [REQUIREMENTS]      default: tests/requirements.txt
#
# The venv is ${NEMOCKPT_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nemockpt}/
# venv-<first 16 hex digits of the requirements file's sha256>, made with
# Debian's /usr/bin/python3 -m venv (package python3-venv) and filled with
# `pip install --no-deps -r REQUIREMENTS` (every package, transitive ones
# included, is pinned there) followed by `pip check`. A stamp file is
# written only after both succeed: a venv without it (an interrupted or
# failed install) is removed and made again; a venv with it is reused and
# nothing is installed. Any failure exits non-zero with pip's own error.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
req=${1:-$here/requirements.txt}
python=/usr/bin/python3

die() {
	echo "tests/venv.sh: $*" >&2
	exit 1
}

[ -r "$req" ] || die "$req: cannot read the requirements file"
[ -x "$python" ] || die "$python is missing (Debian package python3)"
hash=$(sha256sum "$req" | cut -c1-16)
[ -n "$hash" ] || die "$req: sha256sum failed"
base=${NEMOCKPT_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nemockpt}
venv=$base/venv-$hash
stamp=$venv/.nemockpt-installed

mkdir -p "$base" || die "$base: cannot create the directory"
# One installer at a time per venv; a second caller waits, then reuses it.
exec 9>"$venv.lock" || die "$venv.lock: cannot open the lock file"
flock 9 || die "$venv.lock: flock failed"

if [ ! -f "$stamp" ]; then
	rm -rf "$venv"
	echo "tests/venv.sh: installing $req into $venv (first run: a few minutes, ~6 GB)" >&2
	"$python" -m venv "$venv" >&2 ||
		die "$python -m venv $venv failed (is Debian's python3-venv installed?)"
	"$venv/bin/python" -m pip install --no-deps --no-input --disable-pip-version-check \
		-q -r "$req" >&2 || die "pip install -r $req failed (pip's error above)"
	"$venv/bin/python" -m pip check --disable-pip-version-check >&2 ||
		die "pip check failed in $venv: $req is not a complete, consistent set"
	echo "$req sha256 prefix $hash" >"$stamp" || die "$stamp: cannot write the stamp"
fi
"$venv/bin/python" -c "import sys" || die "$venv/bin/python does not run"
echo "$venv/bin/python"
