"""Shell commands the stack runs on the hosts over SSH (pulumi-command), built in one place."""
from __future__ import annotations

import shlex

KUBECTL = "sudo kubectl --kubeconfig /root/.kube/config"
CILIUM_CRDS = ("ciliumnetworkpolicies.cilium.io", "ciliumclusterwidenetworkpolicies.cilium.io",
               "ciliumenvoyconfigs.cilium.io", "ciliumclusterwideenvoyconfigs.cilium.io")


def wait_for_crds(timeout_s: int = 300) -> str:
    """Cilium's operator registers its CRDs at start-up, after the Helm release is "ready" as far
    as Helm is concerned; Cilium CRs must wait until the CRDs are established. Polls until the CRDs
    exist (``kubectl wait`` fails at once on a CRD that does not exist yet), then waits for them."""
    crds = " ".join(f"crd/{c}" for c in CILIUM_CRDS)
    return (f"for _ in $(seq 1 {timeout_s // 5}); do {KUBECTL} get {crds} >/dev/null 2>&1 && break; "
            f"sleep 5; done; {KUBECTL} wait --for=condition=established --timeout={timeout_s}s {crds}")


def quote(s: str) -> str:
    return shlex.quote(s)


# curl inside the pod: the body (only when asked for), then "<http code> <curl exit>" on the last
# line ("200 0", "000 28"). Everything else (kubectl's own failure) is reported as an error.
_POD_CURL = ('out=$(curl -sS {output}-w "\\n%{{http_code}}" -L --max-redirs 5 '
             '--connect-timeout {connect} -m {max_time} {extra}"$1" 2>/dev/null); rc=$?; '
             'printf "%s %s\\n" "$out" "$rc"')
# On the host: turn that output into one JSON object.
_TO_JSON = ("import json,re,sys; f,t,u,r=sys.argv[1:5]; ls=r.rstrip().splitlines() or ['']; "
            "m=re.fullmatch(r'(\\d{3}) (\\d+)', ls[-1].strip()); "
            "print(json.dumps({'from':f,'to':t,'url':u,'http_code':m.group(1) if m else '',"
            "'curl_exit':int(m.group(2)) if m else None,'body':'\\n'.join(ls[:-1]).strip()[:4000] if m else '',"
            "'error':'' if m else r.strip()[-300:]}))")


def probe_command(namespace: str, target: str, url: str, pod: str = "curl",
                  connect_timeout: int = 5, max_time: int = 10, extra_args: tuple[str, ...] = (),
                  body: bool = False) -> str:
    """Run curl in ``namespace``'s pod against ``url``; print one JSON line
    ``{"from", "to", "url", "http_code", "curl_exit", "body", "error"}``. A timeout is a result
    (the command exits 0). ``body`` keeps the response body (e.g. the mTLS echo)."""
    inner = _POD_CURL.format(connect=connect_timeout, max_time=max_time,
                             output="" if body else "-o /dev/null ",
                             extra="".join(f"{quote(a)} " for a in extra_args))
    exec_ = (f"{KUBECTL} -n {quote(namespace)} exec {quote(pod)} -- sh -c {quote(inner)} probe "
             f"{quote(url)}")
    return (f"res=$({exec_} 2>&1); python3 -c {quote(_TO_JSON)} "
            f"{quote(namespace)} {quote(target)} {quote(url)} \"$res\"")


def proxy_log_command(client_ip: str, host: str, port: int, log: str = "/var/log/squid/access.log",
                      tail: int = 2000) -> str:
    """On the proxy host: the CONNECT targets the kind host asked for (last ``tail`` log lines) and
    the addresses ``host`` resolves to here, as one JSON line ``{"connects": [...], "resolved": [...]}``."""
    script = ("import json,socket,subprocess,sys; c,h,p,log,n=sys.argv[1:6]; "
              "lines=subprocess.run(['sudo','tail','-n',n,log],capture_output=True,text=True).stdout.splitlines(); "
              "f=[l.split() for l in lines]; "
              "t=[x[x.index('CONNECT')+1] for x in f if len(x)>6 and x[2]==c and 'CONNECT' in x[:-1]]; "
              "r=sorted({a[4][0] for a in socket.getaddrinfo(h,int(p),socket.AF_INET)}) if h else []; "
              "print(json.dumps({'connects':t[-50:],'resolved':r}))")
    return f"python3 -c {quote(script)} {quote(client_ip)} {quote(host)} {port} {quote(log)} {tail}"
