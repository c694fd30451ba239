"""Fake docker, podman, kind, kubectl and helm executables for the local platform's emulation tests.

``install(bin_dir, state_dir, tools)`` writes one executable per tool into ``bin_dir`` (plus links to
the few system programs the lab's commands use: bash, sh, python3, grep, ...), so a PATH of just
``bin_dir`` has exactly these tools and no real docker/kind/kubectl/helm. Every call is appended to
``state_dir/calls.jsonl`` (tool, argv, stdin, selected environment); the fakes keep their state
(clusters, containers, releases) in ``state_dir/state.json``.

They answer as the pinned releases do:
- kind v0.30.0 (github.com/kubernetes-sigs/kind at tag v0.30.0): the CLI's logger writes to stderr
  (pkg/cmd/logger.go "This logger writes to os.Stderr"); ``get clusters`` prints one name per line on
  stdout, or "No kind clusters found." (logger, so stderr) and exits 0 when there is none
  (pkg/cmd/kind/get/clusters/clusters.go); ``create cluster`` logs 'Creating cluster "NAME" ...' and,
  if nodes of that name exist, fails with 'ERROR: failed to create cluster: node(s) already exist for
  a cluster with the name "NAME"' (pkg/cluster/internal/create/create.go alreadyExists,
  pkg/cmd/kind/create/cluster/createcluster.go, cmd/kind/app/main.go "ERROR: %v"), and on success
  logs 'Set kubectl context to "kind-NAME"'; ``--config -`` reads the config from stdin; ``delete
  cluster`` logs 'Deleting cluster "NAME" ...' and succeeds whether or not it exists
  (pkg/cmd/kind/delete/cluster/deletecluster.go); ``get kubeconfig`` prints the kubeconfig, or fails
  with "could not locate any control plane nodes for cluster named 'NAME'. ..."
  (pkg/cluster/internal/kubeconfig/kubeconfig.go); KIND_EXPERIMENTAL_PROVIDER=podman logs "using
  podman due to KIND_EXPERIMENTAL_PROVIDER" (pkg/internal/runtime/runtime.go).
- kubectl (model.local.KUBECTL_VERSION): a list with no match prints "No resources found" on stderr
  and exits 0; ``get`` of a missing object "Error from server (NotFound): ..." and exits 1; ``wait
  --for=condition=established`` prints "<resource> condition met" per object; ``exec`` runs the pod's
  command (here: answers the lab's curl wrapper with "<code>|<ip>|<exit>" from ``world``).
- helm (model.local.HELM_VERSION): ``upgrade --install`` of a new release prints 'Release "NAME" does
  not exist. Installing it now.' then "NAME: NAME" and "STATUS: deployed".
- docker/podman: ``run -d`` prints the container id; ``inspect -f`` the address; ``exec -i NAME bash
  -s`` runs nothing but records the script; ``rm -f`` removes.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil

SYSTEM = ("bash", "sh", "python3", "grep", "sed", "cat", "env", "seq", "sleep", "head", "tail", "awk", "mktemp", "rm")

FAKE = r'''#!__PYTHON__
import json, os, pathlib, sys
STATE = pathlib.Path(__STATE__)
tool, argv = pathlib.Path(sys.argv[0]).name, sys.argv[1:]
stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
with open(STATE / "calls.jsonl", "a") as f:
    f.write(json.dumps({"tool": tool, "argv": argv, "stdin": stdin,
                        "env": {k: v for k, v in os.environ.items() if k.startswith("KIND_")}}) + "\n")
state = json.loads((STATE / "state.json").read_text())
world = state.get("world", {})

def save():
    (STATE / "state.json").write_text(json.dumps(state))

def out(text="", err="", rc=0):
    sys.stdout.write(text); sys.stderr.write(err); sys.exit(rc)

def flag(name, default=None):
    return argv[argv.index(name) + 1] if name in argv else default

def kind():
    if os.environ.get("KIND_EXPERIMENTAL_PROVIDER") == "podman":
        sys.stderr.write("using podman due to KIND_EXPERIMENTAL_PROVIDER\n")
    clusters = state.setdefault("clusters", {})
    if argv[:2] == ["get", "clusters"]:
        if not clusters:
            out(err="No kind clusters found.\n")
        out("".join(f"{c}\n" for c in sorted(clusters)))
    name = flag("--name", "kind")
    if argv[:2] == ["create", "cluster"]:
        cfg = {}
        if flag("--config") == "-":
            import yaml
            cfg = yaml.safe_load(stdin) or {}
        name = flag("--name") or cfg.get("name") or "kind"
        sys.stderr.write(f'Creating cluster "{name}" ...\n')
        if name in clusters:
            out(err=f'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "{name}"\n', rc=1)
        labels = ((cfg.get("nodes") or [{}])[0].get("labels") or {})
        clusters[name] = {"labels": labels, "config": cfg, "cilium": False}
        # kind v0.30.0 puts every cluster's nodes on the one network "kind" unless
        # KIND_EXPERIMENTAL_DOCKER_NETWORK names another (v0.30.0 pkg/cluster/internal/providers/docker/
        # network.go fixedNetworkName = "kind"; provider.go Provision reads the variable)
        state.setdefault("containers", {})[f"{name}-control-plane"] = {
            "ip": world.get("node_ips", {}).get(name, world.get("node_ip", "172.18.0.2")),
            "network": os.environ.get("KIND_EXPERIMENTAL_DOCKER_NETWORK") or "kind"}
        save()
        out(err=f'Set kubectl context to "kind-{name}"\nYou can now use your cluster with:\n\n'
                f'kubectl cluster-info --context kind-{name}\n')
    if argv[:2] == ["delete", "cluster"]:
        sys.stderr.write(f'Deleting cluster "{name}" ...\n')
        clusters.pop(name, None)
        state.get("containers", {}).pop(f"{name}-control-plane", None)
        save()
        out()
    if argv[:2] == ["get", "kubeconfig"]:
        if name not in clusters:
            out(err=f"ERROR: could not locate any control plane nodes for cluster named '{name}'. "
                    "Use the --name option to select a different cluster\n", rc=1)
        out(f"apiVersion: v1\nclusters:\n- cluster:\n    server: https://127.0.0.1:40123\n  name: kind-{name}\n"
            f"contexts:\n- context:\n    cluster: kind-{name}\n    user: kind-{name}\n  name: kind-{name}\n"
            f"current-context: kind-{name}\nkind: Config\n")
    out(err=f"fake kind: unexpected {argv}\n", rc=2)

def cluster_of_context():
    ctx = flag("--context", "")
    return state.get("clusters", {}).get(ctx[len("kind-"):] if ctx.startswith("kind-") else "")

def kubectl():
    c = cluster_of_context()
    args = [a for i, a in enumerate(argv) if a not in ("--context", "--kubeconfig") and
            (i == 0 or argv[i - 1] not in ("--context", "--kubeconfig"))]
    if c is None:
        out(err="The connection to the server localhost:8080 was refused - did you specify the right host or port?\n", rc=1)
    if args[:2] == ["version", "-o"]:
        out(json.dumps({"clientVersion": {"gitVersion": "v1.34.1"}, "serverVersion": {"gitVersion": "v1.34.0"}}))
    if args[:2] == ["get", "nodes"]:
        sel = flag("-l", "")
        k, _, v = sel.partition("=")
        if c["labels"].get(k) == v:
            out("node/egress-lab-control-plane\n")
        out(err="No resources found\n")
    if args and args[0] == "get" and all(a.startswith("crd/") for a in args[1:] if not a.startswith("-")):
        if not c["cilium"]:
            first = args[1][len("crd/"):]
            out(err=f'Error from server (NotFound): customresourcedefinitions.apiextensions.k8s.io "{first}" not found\n', rc=1)
        out("".join(f"{a[4:]}\n" for a in args[1:] if a.startswith("crd/")))
    if args and args[0] == "wait":
        if not c["cilium"]:
            first = next(a for a in args if a.startswith("crd/"))[len("crd/"):]
            out(err=f'Error from server (NotFound): customresourcedefinitions.apiextensions.k8s.io "{first}" not found\n', rc=1)
        out("".join(f"customresourcedefinition.apiextensions.k8s.io/{a[4:]} condition met\n"
                    for a in args if a.startswith("crd/")))
    if "exec" in args:
        url = args[-1]
        code, ip, rc = world.get("urls", {}).get(url, ["000", "", 28])
        out(f"\n{code}|{ip}|{rc}\n")
    out(err=f"fake kubectl: unexpected {argv}\n", rc=2)

def helm():
    if argv[:1] == ["version"]:
        out("v3.19.0+g3d8990f\n")
    if argv[:2] == ["upgrade", "--install"]:
        name = argv[2]
        ctx = flag("--kube-context", "") or "kind-" + next(iter(state.get("clusters", {})), "")  # kind's current context
        c = state.get("clusters", {}).get(ctx[len("kind-"):])
        if c is None:
            out(err="Error: Kubernetes cluster unreachable\n", rc=1)
        c["cilium"] = True
        c["values"] = pathlib.Path(flag("-f")).read_text() if flag("-f") else ""
        save()
        out(f'Release "{name}" does not exist. Installing it now.\nNAME: {name}\nNAMESPACE: kube-system\n'
            "STATUS: deployed\nREVISION: 1\n")
    out(err=f"fake helm: unexpected {argv}\n", rc=2)

def docker():
    containers = state.setdefault("containers", {})
    if argv[:1] == ["inspect"]:
        name = argv[-1]
        if name not in containers:
            out(err=f"Error: No such object: {name}\n", rc=1)
        out(containers[name]["ip"] + "\n")
    if argv[:1] == ["run"]:
        name = flag("--name")
        containers[name] = {"ip": world.get("proxy_ip", "172.18.0.3"), "network": flag("--network"),
                            "image": argv[argv.index("sleep") - 1] if "sleep" in argv else ""}
        save()
        out("3f2c1d0e9b8a" * 5 + "1234\n")
    if argv[:1] == ["rm"]:
        name = argv[-1]
        containers.pop(name, None)
        save()
        out(name + "\n")
    if argv[:1] == ["exec"]:
        name = argv[2] if argv[1] == "-i" else argv[1]
        if name not in containers:
            out(err=f"Error response from daemon: No such container: {name}\n", rc=1)
        if "tail" in argv:
            import time  # squid's native log starts with the transaction's end time: "now" here
            out(world.get("squid_log", "").replace("{now}", f"{time.time():.3f}"))
        containers[name]["script"] = stdin
        save()
        out("cilium-egress-lab: proxy container ready\n")
    out(err=f"fake {tool}: unexpected {argv}\n", rc=2)

{"kind": kind, "kubectl": kubectl, "helm": helm, "docker": docker, "podman": docker}[tool]()
'''


def install(bin_dir: pathlib.Path, state_dir: pathlib.Path, tools=("docker", "kind", "kubectl", "helm"),
            world: dict | None = None) -> str:
    """Write the fakes; return the PATH (bin_dir only)."""
    import sys
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "state.json").write_text(json.dumps({"world": world or {}}))
    (state_dir / "calls.jsonl").write_text("")
    script = FAKE.replace("__PYTHON__", sys.executable).replace("__STATE__", repr(str(state_dir)))
    for tool in tools:
        path = bin_dir / tool
        path.write_text(script)
        path.chmod(0o755)
    for prog in SYSTEM:
        found = shutil.which(prog)
        if found and not (bin_dir / prog).exists():
            (bin_dir / prog).symlink_to(sys.executable if prog == "python3" else found)
    return str(bin_dir)


def calls(state_dir: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in (state_dir / "calls.jsonl").read_text().splitlines() if line]


def state(state_dir: pathlib.Path) -> dict:
    return json.loads((state_dir / "state.json").read_text())


def run(command: str, path: str, stdin: str = "", env: dict | None = None):
    """Run one of the lab's local commands as pulumi-command's local.Command does: ``/bin/sh -c``
    (its default interpreter) with ``stdin``."""
    import subprocess
    return subprocess.run(["/bin/sh", "-c", command], input=stdin, capture_output=True, text=True,
                          env={**os.environ, **(env or {}), "PATH": path}, timeout=120, check=False)
