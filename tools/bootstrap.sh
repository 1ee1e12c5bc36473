#!/usr/bin/env bash
# Everything `make test` / `make demo` need on a fresh Debian machine: system tools from apt
# (Java 17, Maven, kcat, a C compiler, MIT Kerberos for the GSSAPI tests), a virtualenv with the
# package and its test/dev extras, and the Kafka jars from Maven Central. Idempotent; a missing
# tool that cannot be installed is a hard error.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

"$PYTHON" - <<'PY' || { echo "error: Python >= 3.10 is required ($PYTHON)" >&2; exit 1; }
import sys; sys.exit(sys.version_info < (3, 10))
PY

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
# The compiled record appender (aioproducer/_records/_speedups.c) needs a C compiler and the
# interpreter's headers; CI must run on it, so they are installed like any other tool.
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
# SASL/GSSAPI: the tests run an MIT KDC (krb5kdc, kdb5_util, kadmin.local, kinit); the gssapi
# extra builds against libkrb5-dev (krb5-config); kcat reads back through Cyrus SASL's GSSAPI
# plugin.
PATH="$PATH:/usr/sbin:/sbin"
command -v krb5kdc >/dev/null 2>&1 || missing+=(krb5-kdc)
command -v kadmin.local >/dev/null 2>&1 || missing+=(krb5-admin-server)
command -v kinit >/dev/null 2>&1 || missing+=(krb5-user)
command -v krb5-config >/dev/null 2>&1 || missing+=(libkrb5-dev)
dpkg-query -W -f='${Status}' libsasl2-modules-gssapi-mit 2>/dev/null | grep -q 'ok installed' \
  || missing+=(libsasl2-modules-gssapi-mit)
if ! "$PYTHON" -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
  missing+=(python3-dev)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]} from Debian packages" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  if ! command -v apt-get >/dev/null 2>&1 || { [ -n "$SUDO" ] && ! command -v sudo >/dev/null 2>&1; }; then
    echo "error: missing ${missing[*]} and no way to install them (need apt-get as root or sudo)." >&2
    echo "       Install Java 17, Maven and kcat, then run again." >&2
    exit 1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for tool in java mvn kcat cc krb5kdc kadmin.local kinit krb5-config; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool is still missing after install" >&2; exit 1; }
done

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.aioproducer-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ] \
  || [ aioproducer/_records/_speedups.c -nt "$stamp" ] \
  || [ aioproducer/_records/_handle.c -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # setuptools prints a banner for every editable install of a flat layout ("Please be careful
  # with folders in your working directory..."): nothing to act on here, so not shown.
  PYTHONWARNINGS="ignore:Editable installation" \
    "$VENV/bin/python" -m pip install -q -e '.[test,dev,snappy,bench,trio,cli,docs,gssapi,oauth-assertion]'
  touch "$stamp"
fi
# The checkout as a path in a .pth file, beside the editable install's import hook: mypy follows
# paths, not import hooks, so without it a project type-checked against this venv (and
# tests/unit/test_java_settings.py) would not find the package. (setuptools' 'compat' editable
# mode does the same but prints a deprecation banner at every install.)
purelib=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PWD" > "$purelib/aioproducer-checkout.pth"
"$VENV/bin/python" -m aioproducer.testing fetch-jars >/dev/null
echo "bootstrap: ready ($("$VENV/bin/python" --version), $(java -version 2>&1 | head -n1), kafka jars cached)" >&2
