"""Issue 21 contract 1: input as people have it (kubectl dumps, Helm output, every pod-template kind,
namespaces used but not declared). Expected values come from the Kubernetes docs quoted per test."""
from __future__ import annotations

import json
import pathlib
import textwrap

import pytest
import yaml

from cilium_verdicts import Cluster, load_paths
from cilium_verdicts.cli import main

from .conftest import check, netpol, probe

SEEDS = pathlib.Path(__file__).resolve().parents[3] / "scenarios" / "seed_manifests"

# What ``kubectl get deploy,netpol -n shop -o yaml`` writes: a ``kind: List`` whose items carry the
# server-set fields (status, managedFields, resourceVersion, uid, creationTimestamp, annotations).
KUBECTL_LIST = """\
apiVersion: v1
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    annotations:
      deployment.kubernetes.io/revision: "1"
    creationTimestamp: "2026-11-30T10:00:00Z"
    generation: 1
    labels: {app: web}
    managedFields:
    - apiVersion: apps/v1
      fieldsType: FieldsV1
      fieldsV1: {"f:spec": {"f:replicas": {}}}
      manager: kubectl-client-side-apply
      operation: Update
      time: "2026-11-30T10:00:00Z"
    name: web
    namespace: shop
    resourceVersion: "1234"
    uid: 0b7cfd5e-3c1c-4b8e-9a55-000000000001
  spec:
    progressDeadlineSeconds: 600
    replicas: 1
    revisionHistoryLimit: 10
    selector: {matchLabels: {app: web}}
    strategy:
      rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}
      type: RollingUpdate
    template:
      metadata:
        creationTimestamp: null
        labels: {app: web}
      spec:
        containers:
        - image: nginx:1.27
          imagePullPolicy: IfNotPresent
          name: nginx
          ports:
          - {containerPort: 80, name: http, protocol: TCP}
          resources: {}
          terminationMessagePath: /dev/termination-log
          terminationMessagePolicy: File
        dnsPolicy: ClusterFirst
        restartPolicy: Always
        schedulerName: default-scheduler
        securityContext: {}
        terminationGracePeriodSeconds: 30
  status:
    availableReplicas: 1
    conditions:
    - lastTransitionTime: "2026-11-30T10:00:05Z"
      lastUpdateTime: "2026-11-30T10:00:05Z"
      message: Deployment has minimum availability.
      reason: MinimumReplicasAvailable
      status: "True"
      type: Available
    observedGeneration: 1
    readyReplicas: 1
    replicas: 1
    updatedReplicas: 1
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata:
    creationTimestamp: "2026-11-30T10:00:00Z"
    generation: 1
    name: web-from-client
    namespace: shop
    resourceVersion: "1240"
    uid: 0b7cfd5e-3c1c-4b8e-9a55-000000000002
  spec:
    ingress:
    - from:
      - namespaceSelector:
          matchLabels: {kubernetes.io/metadata.name: client}
    podSelector: {matchLabels: {app: web}}
    policyTypes: [Ingress]
kind: List
metadata:
  resourceVersion: ""
"""

# What ``helm template`` writes: ``---`` separators, ``# Source:`` comments, empty documents.
HELM = """\
---
# Source: demo/templates/empty.yaml
---
# Source: demo/templates/client.yaml
apiVersion: batch/v1
kind: CronJob
metadata:
  name: poller
  namespace: client
  labels:
    helm.sh/chart: demo-0.1.0
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          labels: {app: poller}
        spec:
          restartPolicy: OnFailure
          containers:
          - name: curl
            image: curlimages/curl:8.11.0
---
# Source: demo/templates/job.yaml
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  namespace: client
spec:
  template:
    metadata:
      labels: {app: migrate}
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: registry.example/migrate:1
"""


@pytest.fixture
def dumps(tmp_path):
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster" / "shop.yaml").write_text(KUBECTL_LIST)
    (tmp_path / "chart").mkdir()
    (tmp_path / "chart" / "rendered.yaml").write_text(HELM)
    return tmp_path


def test_kubectl_list_and_helm_output_load_with_every_workload(dumps):
    objects, origins = load_paths([str(dumps)])
    cluster = Cluster.from_objects(objects, origins=origins)
    assert {k: w.kind for k, w in cluster.workloads.items() if not w.builtin} == {
        "client/migrate": "Job", "client/poller": "CronJob", "shop/web": "Deployment"}
    # kubernetes.io "CronJob": ".spec.jobTemplate defines a template for the Jobs that the CronJob
    # creates"; Job: ".spec.template is the template of the pods the Job creates".
    assert cluster.workloads["client/poller"].labels == {"app": "poller"}
    assert cluster.workloads["shop/web"].ports == (("http", 80, "TCP"),)


def test_undeclared_namespaces_are_inferred_with_their_name_label(dumps):
    """kubernetes.io "Namespaces": "The Kubernetes control plane sets an immutable label
    kubernetes.io/metadata.name on all namespaces. The value of the label is the namespace name."
    So the dump's namespaceSelector on that label admits the CronJob's and the Job's pods."""
    objects, origins = load_paths([str(dumps)])
    cluster = Cluster.from_objects(objects, origins=origins)
    assert cluster.namespaces["client"] == {"kubernetes.io/metadata.name": "client"}
    assert cluster.namespaces["shop"] == {"kubernetes.io/metadata.name": "shop"}
    check(probe(cluster, "client/poller", "shop/web", 80), "allow")
    check(probe(cluster, "client/migrate", "shop/web", 80), "allow")
    # (files are read sorted: chart/ before cluster/)
    assert [w for w in cluster.warnings if w.startswith("namespace ")] == [
        "namespace client is not declared (first used by CronJob client/poller): inferred with only the label "
        "kubernetes.io/metadata.name=client",
        "namespace shop is not declared (first used by Deployment shop/web): inferred with only the label "
        "kubernetes.io/metadata.name=shop"]


def test_job_pods_are_selected_by_policies():
    """A Job's pods carry the template labels, so a podSelector on them isolates them (a policy
    "selects pods" by label, whatever created them: kubernetes.io "Network Policies")."""
    objects = [o for o in yaml.safe_load_all(HELM) if o] + [
        netpol("deny-egress", "client", podSelector={"matchLabels": {"app": "migrate"}}, policyTypes=["Egress"])]
    cluster = Cluster.from_objects(objects)
    check(probe(cluster, "client/migrate", "kube-system/coredns", 53, protocol="UDP"), "drop")
    check(probe(cluster, "client/poller", "kube-system/coredns", 53, protocol="UDP"), "allow")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_warns_on_stderr_and_strict_namespaces_exits_2(capsys, dumps):
    code, out, err = run(capsys, "-f", str(dumps), "--format", "json")
    assert code == 0 and json.loads(out)["workloads"] == ["client/migrate", "client/poller", "shop/web"]
    assert "warning: namespace client is not declared" in err
    code, out, err = run(capsys, "-f", str(dumps), "--strict-namespaces")
    assert (code, out) == (2, "")
    assert err == (f"error: {dumps / 'chart' / 'rendered.yaml'}: CronJob client/poller: namespace client is not "
                   "declared; add a Namespace object (--strict-namespaces)\n")


@pytest.mark.parametrize("seed", ["hoot51", "stars", "eks-retail"])
def test_the_seeds_policy_folders_load(capsys, seed):
    """Issue 21: "today's verdicts ... rejects the seeds' own policy folders (namespaces not declared)"."""
    code, out, err = run(capsys, "-f", str(SEEDS / seed), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["cells"] == []  # policies only: no workloads to probe


def test_json_documents_and_json_lists(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "p"}},
         "spec": {"containers": [{"name": "c", "image": "x"}]}}]}))
    (tmp_path / "b.yaml").write_text(textwrap.dedent("""\
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}
        ---
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q", "namespace": "n"}}
        """))
    objects, _ = load_paths([str(tmp_path)])
    cluster = Cluster.from_objects(objects)
    assert [k for k, w in cluster.workloads.items() if not w.builtin] == ["default/p", "n/q"]
    assert cluster.warnings == []
