"""Probes of your own: ``--probe "FROM -> TO:PORT[/PROTO] [METHOD PATH] [via pod-ip|service-name|service-ip]"``
and ``--probes FILE`` (a YAML list of ``{from, to, port, protocol, via, method, path, headers}``).

FROM and TO are ``ns/name`` or a name unique across namespaces; TO may be ``world:HOST`` (dialled by
name through DNS, ``via fqdn``; an IP literal is dialled directly). A probe without ``via`` goes to the
pod IP (``fqdn`` for a world destination). Every error is a PolicyInputError naming the probe.
"""
from __future__ import annotations

import argparse
import pathlib
import re
from typing import Iterable, Sequence

import yaml

from .cluster import Cluster, PolicyInputError
from .verdict import PROTOCOLS, VIAS, Probe

PROBE_KEYS = ("from", "to", "port", "protocol", "via", "method", "path", "headers")
USER_VIAS = ("pod-ip", "service-name", "service-ip")
_SYNTAX = 'FROM -> TO:PORT[/PROTO] [METHOD PATH] [via pod-ip|service-name|service-ip]'
_PROBE = re.compile(r"^\s*(?P<src>\S+)\s*->\s*(?P<to>\S+):(?P<port>[^/\s]+)(?:/(?P<proto>\S+))?"
                    r"(?:\s+(?P<method>(?!via\s)[A-Za-z]+)\s+(?P<path>/\S*))?"
                    r"(?:\s+via\s+(?P<via>\S+))?\s*$")


def parse_probe(text: str) -> dict:
    """One ``--probe`` string as the fields of a probe entry (the same keys as a ``--probes`` item)."""
    m = _PROBE.match(text)
    if m is None:
        raise PolicyInputError(f"--probe {text!r}: expected {_SYNTAX!r}")
    entry = {"from": m["src"], "to": m["to"], "port": m["port"]}
    if m["proto"]:
        entry["protocol"] = m["proto"]
    if m["method"]:
        entry["method"], entry["path"] = m["method"], m["path"]
    if m["via"]:
        entry["via"] = m["via"]
    return entry


def load_probe_file(path: str) -> list[dict]:
    """The entries of a ``--probes`` YAML file (a list of mappings, or ``{probes: [...]}``)."""
    try:
        doc = yaml.safe_load(pathlib.Path(path).read_text())
    except yaml.YAMLError as exc:
        raise PolicyInputError(f"{path}: YAML syntax error: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyInputError(f"{path}: cannot read: {exc}") from None
    if isinstance(doc, dict) and set(doc) == {"probes"}:
        doc = doc["probes"]
    if not isinstance(doc, list) or not all(isinstance(e, dict) for e in doc):
        raise PolicyInputError(f"{path}: --probes needs a YAML list of mappings with keys {', '.join(PROBE_KEYS)}")
    return doc


def probe(cluster: Cluster, entry: dict, where: str) -> Probe:
    """A Probe from one entry (``where`` names it in errors, e.g. ``probes.yaml[2]``), workloads resolved
    to ``ns/name`` in ``cluster``."""
    unknown = sorted(set(entry) - set(PROBE_KEYS))
    if unknown:
        raise PolicyInputError(f"{where}: unknown key {', '.join(map(str, unknown))}; accepted: {', '.join(PROBE_KEYS)}")
    for key in ("from", "to", "port"):
        if entry.get(key) in (None, ""):
            raise PolicyInputError(f"{where}: {key} is required")
    source = cluster.workload(str(entry["from"])).key
    to = str(entry["to"])
    world = to.startswith("world:")
    if world and not to[len("world:"):]:
        raise PolicyInputError(f"{where}: world:HOST needs a host")
    target = to if world else cluster.workload(to).key
    port = _port(entry["port"], where)
    protocol = str(entry.get("protocol") or "TCP").upper()
    if protocol not in PROTOCOLS:
        raise PolicyInputError(f"{where}: protocol {entry.get('protocol')!r}; accepted: {', '.join(PROTOCOLS)}")
    via = entry.get("via") or ("fqdn" if world else "pod-ip")
    accepted = ("fqdn",) if world else USER_VIAS
    if via not in accepted:
        raise PolicyInputError(f"{where}: via {via!r} {'for a world destination ' if world else ''}not accepted; "
                               f"accepted: {', '.join(accepted)}")
    assert via in VIAS
    method, path = entry.get("method"), entry.get("path")
    if (method is None) != (path is None):
        raise PolicyInputError(f"{where}: an HTTP request needs both method and path")
    request = None
    if method is not None:
        if not re.fullmatch(r"[A-Za-z]+", str(method)) or not str(path).startswith("/"):
            raise PolicyInputError(f"{where}: method {method!r} must be a word and path {path!r} start with /")
        request = f"{str(method).upper()} {path}"
    headers = _headers(entry.get("headers"), where)
    if headers and request is None:
        raise PolicyInputError(f"{where}: headers need an HTTP request (method and path)")
    extra = {"headers": headers} if headers else {}
    return Probe(source, target, port, via=via, protocol=protocol, request=request, **extra)


def probes(cluster: Cluster, texts: Sequence[str] = (), files: Sequence[str] = ()) -> list[Probe]:
    """Every ``--probe`` then every ``--probes`` file's entries, in the order given."""
    out = [probe(cluster, parse_probe(t), f"--probe {t!r}") for t in texts]
    for path in files:
        out += [probe(cluster, e, f"{path}[{i}]") for i, e in enumerate(load_probe_file(path))]
    return out


def _port(value, where: str) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
        raise PolicyInputError(f"{where}: port {value!r} must be a number 1-65535")
    port = int(value)
    if not 1 <= port <= 65535:
        raise PolicyInputError(f"{where}: port {port} is out of range 1-65535")
    return port


def _headers(value, where: str) -> tuple[tuple[str, str], ...]:
    """``{Name: value}`` or ``["Name: value", ...]`` as ``((name, value), ...)`` in the order given."""
    if value is None:
        return ()
    items: Iterable
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list) and all(isinstance(v, str) and ":" in v for v in value):
        items = (v.split(":", 1) for v in value)
    else:
        raise PolicyInputError(f"{where}: headers must be a mapping or a list of 'Name: value' strings")
    return tuple((str(k).strip(), "" if v is None else str(v).strip()) for k, v in items)


def add_probe_arguments(p: argparse.ArgumentParser) -> None:
    """--probe / --probes, for the verdicts form and for diff."""
    p.add_argument("--probe", action="append", default=[], metavar="PROBE",
                   help='evaluate only this probe: "FROM -> TO:PORT[/PROTO] [METHOD PATH] '
                        '[via pod-ip|service-name|service-ip]" (repeatable; TO may be world:HOST)')
    p.add_argument("--probes", action="append", default=[], metavar="FILE",
                   help="a YAML list of probes {from, to, port, protocol, via, method, path, headers}")
