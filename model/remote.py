"""Shell commands the stack runs on the hosts over SSH (pulumi-command), built in one place."""
from __future__ import annotations

import inspect
import json
import shlex

from .outcome import classify

KUBECTL = "sudo kubectl --kubeconfig /root/.kube/config"
CILIUM_CRDS = ("ciliumnetworkpolicies.cilium.io", "ciliumclusterwidenetworkpolicies.cilium.io",
               "ciliumenvoyconfigs.cilium.io", "ciliumclusterwideenvoyconfigs.cilium.io")


def wait_for_crds(timeout_s: int = 300, kubectl: str = KUBECTL) -> str:
    """Cilium's operator registers its CRDs at start-up, after the Helm release is "ready" as far
    as Helm is concerned; Cilium CRs must wait until the CRDs are established. Polls until the CRDs
    exist (``kubectl wait`` fails at once on a CRD that does not exist yet), then waits for them."""
    crds = " ".join(f"crd/{c}" for c in CILIUM_CRDS)
    return (f"for _ in $(seq 1 {timeout_s // 5}); do {kubectl} get {crds} >/dev/null 2>&1 && break; "
            f"sleep 5; done; {kubectl} wait --for=condition=established --timeout={timeout_s}s {crds}")


def quote(s: str) -> str:
    return shlex.quote(s)


# curl inside the pod: the body (only when asked for), then "<http code>|<remote ip>|<curl exit>" on
# the last line ("200|93.184.215.14|0", "000||28"). Anything else (kubectl's own failure) is an error.
_POD_CURL = ('out=$(curl -sS {output}-w "\\n%{{http_code}}|%{{remote_ip}}" -L --max-redirs 5 '
             '--connect-timeout {connect} -m {max_time} {extra}"$1" 2>/dev/null); rc=$?; '
             'printf "%s|%s\\n" "$out" "$rc"')


def exec_curl(namespace: str, target: str, container: str, url_word: str, curl_args: tuple[str, ...] = (),
              *, body: bool = False, connect_timeout: int = 5, max_time: int = 10, kubectl: str = KUBECTL) -> str:
    """The shell command (run on the kind host) that curls ``url_word`` - a shell word, evaluated on
    the host, e.g. ``"http://$(kubectl get svc ...):8000/x"`` - from ``container`` of ``target``
    (``deploy/x``, ``sts/x`` or a pod's name) in ``namespace``. ``kubectl``: the command prefix (the
    kind host's root kubectl on aws, the user's own on local and existing)."""
    inner = _POD_CURL.format(connect=connect_timeout, max_time=max_time,
                             output="" if body else "-o /dev/null ",
                             extra="".join(f"{quote(a)} " for a in curl_args))
    return (f"{kubectl} -n {quote(namespace)} exec {quote(target)} -c {quote(container)} -- "
            f"sh -c {quote(inner)} probe {url_word} 2>&1")


def rollout_restart(namespace: str, target: str, timeout_s: int = 180, kubectl: str = KUBECTL) -> str:
    """Restart a workload and wait for it (the seed's "rollout restart ... rollout status")."""
    return (f"{kubectl} -n {quote(namespace)} rollout restart {quote(target)} >/dev/null && "
            f"{kubectl} -n {quote(namespace)} rollout status {quote(target)} --timeout={timeout_s}s >/dev/null")


# On the host: run the probe until the outcome is the expected one or the convergence window ends
# (Cilium regenerates endpoint policy, pushes Envoy listeners and AWS applies security-group changes
# asynchronously), then print one JSON line with the last observation and the history. The outcome
# is computed by model.outcome.classify itself (its source is embedded below).
_LOOP = """
import json, re, subprocess, sys, time
{classify}
label, expect, window, interval, max_time, run = sys.argv[1:7]
window, interval = float(window), float(interval)
start, history = time.monotonic(), []
while True:
    began, began_at = time.monotonic(), time.time()
    try:
        raw = subprocess.run(["bash", "-c", run], capture_output=True, text=True,
                             timeout=float(max_time) + 60).stdout
    except subprocess.TimeoutExpired:
        raw = "kubectl exec timed out"
    lines = raw.rstrip().splitlines() or [""]
    m = re.fullmatch(r"(\\d{{3}})\\|([^|]*)\\|(\\d+)", lines[-1].strip())
    obs = dict(http_code=m.group(1), remote_ip=m.group(2), curl_exit=int(m.group(3)),
               body="\\n".join(lines[:-1]).strip()[:4000], error="") if m else dict(
               http_code="", remote_ip="", curl_exit=None, body="", error=raw.strip()[-300:])
    outcome = classify(obs["http_code"], obs["curl_exit"])
    elapsed = round(time.monotonic() - start, 1)
    history.append(dict(t=elapsed, outcome=outcome, http_code=obs["http_code"], curl_exit=obs["curl_exit"]))
    took = time.monotonic() - began  # another attempt must fit in the window, like this one did
    if outcome == expect or elapsed + interval + took > window:
        break
    time.sleep(interval)
print(json.dumps(dict(json.loads(label), **obs, outcome=outcome, expected=expect,
                      attempts=len(history), elapsed_s=elapsed, history=history[-20:],
                      started_at=round(began_at, 3))))
"""


def probe_command(label: dict, run: str, *, expect: str, window_s: int, interval_s: float = 5,
                  max_time: int = 10, setup: str = "") -> str:
    """Run ``run`` (model.remote.exec_curl) until its outcome is ``expect`` or ``window_s`` seconds
    have passed (one attempt when 0), after ``setup`` (once); print one JSON line: ``label``'s keys
    and ``http_code``, ``remote_ip``, ``curl_exit``, ``body``, ``error``, ``outcome``, ``expected``,
    ``attempts``, ``elapsed_s``, ``history``, ``started_at`` (epoch seconds when the last attempt
    began: the proxy evidence looks only at what was logged after it). A timeout is a result (the
    command exits 0)."""
    loop = _LOOP.format(classify=inspect.getsource(classify))
    args = [json.dumps(label, sort_keys=True), expect, str(window_s), str(interval_s), str(max_time), run]
    cmd = f"python3 -c {quote(loop)} " + " ".join(quote(a) for a in args)
    return f"{setup} && {cmd}" if setup else cmd


def proxy_log_command(client_ip: str, targets: list[str], window_s: int = 30, interval_s: float = 2,
                      log: str = "/var/log/squid/access.log", tail: int = 2000, since: float = 0.0,
                      skew_s: float = 2.0, reader: tuple[str, ...] = ("sudo",)) -> str:
    """On the proxy host: wait (at most ``window_s``) until the access log shows a CONNECT to one of
    ``targets`` (``<name>:<port>`` or ``<ip>:<port>``: what the probe's connection was tunnelled as,
    never a second DNS lookup - CDNs rotate addresses) from ``client_ip``; print one JSON line
    ``{"targets", "connects", "attempts"}`` with the CONNECT targets seen from the kind host (last
    50). No ``targets`` (the probe never connected) is reported at once. With ``since`` (the probe's
    ``started_at``) only entries logged after it count - squid's native log starts with the epoch
    time of the transaction's end - less ``skew_s`` for the two hosts' clocks (both on Amazon Time
    Sync): with TLS tunnelled by name every probe's CONNECT looks alike, so an earlier run's entry
    must not stand in for this one. ``reader``: what runs ``tail`` on the log (``sudo`` on the proxy
    host; ``docker exec <container>`` for the local platform's proxy container)."""
    script = ("import json,subprocess,sys,time; c,targets,log,n,window,pause,since=sys.argv[1:8]; "
              "targets=json.loads(targets); end=time.monotonic()+float(window); attempts=0; since=float(since)\n"
              "def at(x):\n"
              " try: return float(x[0])\n"
              " except ValueError: return 0.0\n"
              "while True:\n"
              " attempts+=1; out=subprocess.run(['sudo','tail','-n',n,log],capture_output=True,text=True).stdout\n"
              " f=[l.split() for l in out.splitlines()]\n"
              " t=[x[x.index('CONNECT')+1] for x in f if len(x)>6 and x[2]==c and 'CONNECT' in x[:-1] and at(x)>=since]\n"
              " if not targets or set(targets)&set(t) or time.monotonic()+float(pause)>end: break\n"
              " time.sleep(float(pause))\n"
              "print(json.dumps({'targets':targets,'connects':t[-50:],'attempts':attempts}))")
    if reader != ("sudo",):
        script = script.replace("['sudo','tail',", repr([*reader, "tail"])[:-1] + ",")
    args = [client_ip, json.dumps(targets), log, str(tail), str(window_s), str(interval_s),
            str(since - skew_s if since else 0.0)]
    return f"python3 -c {quote(script)} " + " ".join(quote(a) for a in args)
