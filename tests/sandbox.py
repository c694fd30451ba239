"""Run a generated boot script for real, as root, in a private mount namespace whose /etc, /usr,
/var and /root are overlays: everything the script writes lands in a temporary upper directory
and the host stays untouched. Upstream programs the script drives (apt-get, systemctl, kind, curl,
...) are replaced by *shims* that emulate the behaviour that matters (apt's dpkg lock, squid's
start-up in the package's postinst, kind's kubeconfig) and append what happened to an events log.

Needs root, ``unshare`` and overlayfs; ``require_sandbox()`` skips with the reason elsewhere
(CI runs as root, so these tests run there).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

OVERLAID = ("/etc", "/usr", "/var", "/root")


def require_sandbox() -> None:
    if os.geteuid() != 0:
        pytest.skip("boot-script emulation needs root (a private mount namespace with overlays); CI runs as root")
    if shutil.which("unshare") is None:
        pytest.skip("boot-script emulation needs unshare (util-linux)")


@dataclass
class Run:
    returncode: int
    output: str          # the script's stdout+stderr
    events: list[str]    # one line per shim call, in order
    upper: Path          # the overlays' upper directories: upper/etc, upper/usr, ...

    def file(self, path: str) -> str:
        """A file the script wrote (``/etc/squid/squid.conf`` -> its content)."""
        top = "/" + path.strip("/").split("/", 1)[0]
        return (self.upper / top.strip("/") / "upper" / path.strip("/").split("/", 1)[1]).read_text()


def run(script: str, shims: dict[str, str], tmp: Path, *, before: str = "", timeout: int = 120) -> Run:
    """Run ``script`` with ``shims`` (name -> bash body) first on PATH. ``before`` is bash run inside
    the namespace first (e.g. start a background lock holder). Shims see ``$EVENTS`` (append a line
    per call) and ``$FAKE`` (a scratch directory outside the overlays)."""
    bin_dir, fake, upper = tmp / "bin", tmp / "fake", tmp / "overlay"
    for d in (bin_dir, fake, upper):
        d.mkdir(parents=True, exist_ok=True)
    for name, body in shims.items():
        path = bin_dir / name
        path.write_text("#!/bin/bash\n" + body.strip() + "\n")
        path.chmod(0o755)
    (tmp / "script.sh").write_text(script)
    events = fake / "events"
    events.write_text("")
    mounts = []
    for top in OVERLAID:
        u, w = upper / top.strip("/") / "upper", upper / top.strip("/") / "work"
        u.mkdir(parents=True, exist_ok=True)
        w.mkdir(parents=True, exist_ok=True)
        mounts.append(f"mount -t overlay overlay -o lowerdir={top},upperdir={u},workdir={w} {top}")
    # a fresh cloud image has no policy-rc.d (container images often ship one that forbids starts)
    wrapper = "\n".join(["set -e", *mounts, "rm -f /usr/sbin/policy-rc.d",
                          f"export PATH={bin_dir}:$PATH EVENTS={events} FAKE={fake}",
                         before, "set +e", f"bash {tmp / 'script.sh'}"])
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", wrapper],
                          capture_output=True, text=True, timeout=timeout, cwd=tmp)
    return Run(proc.returncode, proc.stdout + proc.stderr, events.read_text().splitlines(), upper)


# --------------------------------------------------------------------------- shared shims
# apt-get as it behaves on a fresh Ubuntu image: unattended-upgrades may hold the dpkg frontend lock
# at boot; without -o DPkg::Lock::Timeout=N apt-get fails at once (exit 100, "Could not get lock"),
# with it apt waits up to N seconds (apt >= 1.9.11, apt-pkg/deb/debsystem.cc). `update` fails while
# the instance has no network path yet ($FAKE/offline-updates counts the failing calls). Installing
# squid runs its postinst, which starts squid through deb-systemd-invoke - unless
# /usr/sbin/policy-rc.d exits 101 (deb-systemd-invoke honours it) - with whatever squid.conf is
# on disk (the package's stock one, if nothing else is there).
APT_GET = r'''
echo "apt-get $*" >> "$EVENTS"
timeout=""
prev=""
for a in "$@"; do
  case "$prev:$a" in -o:DPkg::Lock::Timeout=*|-o:Dpkg::Lock::Timeout=*) timeout="${a#*=}";; esac
  prev="$a"
done
exec 9>"$FAKE/dpkg.lock"
if [ -n "$timeout" ]; then flock -w "$timeout" 9 || { echo "E: Could not get lock (timed out)"; exit 100; }
else flock -n 9 || { echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)"; exit 100; }
fi
if [[ " $* " == *" update "* ]]; then
  n=$(cat "$FAKE/offline-updates" 2>/dev/null || echo 0)
  if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$FAKE/offline-updates"; echo "E: Temporary failure resolving"; exit 100; fi
fi
if [[ " $* " == *" install "* && " $* " == *" squid "* ]]; then
  mkdir -p /etc/squid
  [ -f /etc/squid/squid.conf ] || echo "# stock squid.conf of the package (CONNECT to 443 only)" > /etc/squid/squid.conf
  rc=0
  if [ -x /usr/sbin/policy-rc.d ]; then /usr/sbin/policy-rc.d squid start; rc=$?; fi
  if [ "$rc" = 101 ]; then
    echo "postinst: squid start forbidden by policy-rc.d" >> "$EVENTS"
  else
    echo "squid started with: $(head -c 80 /etc/squid/squid.conf | head -n 1)" >> "$EVENTS"
  fi
fi
exit 0
'''

# systemctl: starting squid (re)reads /etc/squid/squid.conf; everything else just succeeds.
SYSTEMCTL = r'''
echo "systemctl $*" >> "$EVENTS"
if [[ " $* " == *" squid"* && ( "$1" == start || "$1" == restart ) ]]; then
  echo "squid started with: $(head -c 80 /etc/squid/squid.conf | head -n 1)" >> "$EVENTS"
fi
exit 0
'''

RECORD = 'echo "$(basename "$0") $*" >> "$EVENTS"; exit 0'
