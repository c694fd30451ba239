"""The Pod Security Standards' *baseline* profile, emulated from the upstream admission code at the tag
of the lab's Kubernetes (kind v0.30.0's node image: v1.34): kubernetes/pod-security-admission
v0.34.0, policy/check_*.go (the checks whose Level is api.LevelBaseline). What a live cluster's
admission does with a pod in a namespace labelled ``pod-security.kubernetes.io/enforce: baseline``;
the tests use it to show the lab's pods are admitted and a hostNetwork/privileged pod is not.

Each check returns the upstream ForbiddenReason-like text; ``violations(pod_spec, metadata)`` lists
them (empty: admitted).
"""
from __future__ import annotations

from typing import Any, Iterable

# check_capabilities_baseline.go: capabilities_allowed_1_0
CAPABILITIES_ALLOWED = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                        "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
# check_sysctls.go: sysctlsAllowedV1Dot32 (the newest set, in force for v1.34)
SYSCTLS_ALLOWED = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
                   "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
                   "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                   "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem",
                   "net.ipv4.tcp_wmem"}
# check_seLinuxOptions.go: selinuxAllowedTypes1_31
SELINUX_TYPES_ALLOWED = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
APPARMOR_TYPES_ALLOWED = {"RuntimeDefault", "Localhost"}  # check_appArmorProfile.go allowedProfileType


def _containers(spec: dict) -> Iterable[dict]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or []


def violations(spec: dict[str, Any], metadata: dict[str, Any] | None = None) -> list[str]:
    out = []
    # check_hostNamespaces.go
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            out.append(f"host namespaces ({key}=true)")
    # check_privileged.go
    for c in _containers(spec):
        if (c.get("securityContext") or {}).get("privileged"):
            out.append(f"privileged (container {c['name']!r})")
    # check_capabilities_baseline.go
    for c in _containers(spec):
        added = set(((c.get("securityContext") or {}).get("capabilities") or {}).get("add") or []) - CAPABILITIES_ALLOWED
        if added:
            out.append(f"non-default capabilities (container {c['name']!r}: {sorted(added)})")
    # check_hostPathVolumes.go
    for v in spec.get("volumes") or []:
        if "hostPath" in v:
            out.append(f"hostPath volumes ({v['name']!r})")
    # check_hostPorts.go
    for c in _containers(spec):
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                out.append(f"hostPort (container {c['name']!r}: {port['hostPort']})")
    # check_appArmorProfile.go
    contexts = [spec.get("securityContext") or {}] + [c.get("securityContext") or {} for c in _containers(spec)]
    for sc in contexts:
        profile = (sc.get("appArmorProfile") or {}).get("type")
        if profile is not None and profile not in APPARMOR_TYPES_ALLOWED:
            out.append(f"forbidden AppArmor profile ({profile})")
    for k, v in ((metadata or {}).get("annotations") or {}).items():
        if k.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
                v == "runtime/default" or v.startswith("localhost/")):
            out.append(f"forbidden AppArmor profile annotation ({v})")
    # check_seLinuxOptions.go
    for sc in contexts:
        options = sc.get("seLinuxOptions") or {}
        if options.get("type", "") not in SELINUX_TYPES_ALLOWED or options.get("user") or options.get("role"):
            out.append(f"seLinuxOptions ({options})")
    # check_procMount.go (baseline): Default only
    for c in _containers(spec):
        mount = (c.get("securityContext") or {}).get("procMount")
        if mount not in (None, "Default"):
            out.append(f"procMount (container {c['name']!r}: {mount})")
    # check_seccompProfile_baseline.go: not Unconfined
    for sc in contexts:
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            out.append("seccompProfile (Unconfined)")
    # check_sysctls.go
    bad = [s["name"] for s in (spec.get("securityContext") or {}).get("sysctls") or []
           if s["name"] not in SYSCTLS_ALLOWED]
    if bad:
        out.append(f"forbidden sysctls ({bad})")
    # check_windowsHostProcess.go
    for sc in contexts:
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            out.append("hostProcess")
    # check_hostProbesAndhostLifecycle.go (v1.34): probes and lifecycle handlers may not name a host
    for c in _containers(spec):
        handlers = [c.get(p) or {} for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [(c.get("lifecycle") or {}).get(h) or {} for h in ("postStart", "preStop")]
        for h in handlers:
            for kind in ("httpGet", "tcpSocket"):
                if (h.get(kind) or {}).get("host"):
                    out.append(f"probe or lifecycle host (container {c['name']!r}: {h[kind]['host']})")
    return out


def pod_spec(obj: dict) -> tuple[dict, dict] | None:
    """(pod spec, pod metadata) of a Pod or a workload's template; None for other objects."""
    if obj["kind"] == "Pod":
        return obj["spec"], obj["metadata"]
    template = (obj.get("spec") or {}).get("template")
    if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "ReplicationController", "ReplicaSet", "Job") \
            and template:
        return template["spec"], template.get("metadata") or {}
    return None
