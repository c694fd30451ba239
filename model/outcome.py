"""curl's result -> a probe's outcome (allow, drop, l7-deny, dns-fail, refused, error).

One function, self-contained: model.probes judges with it, and model.remote embeds its source in the
probe loop that runs on the kind host."""


def classify(http_code: str, curl_exit: int | None) -> str:
    """curl's result -> outcome. Self-contained (literals only): its source also runs on the kind
    host inside every probe's convergence loop (model.remote.probe_command)."""
    if curl_exit == 0:
        return "l7-deny" if http_code == "403" else "allow"
    if curl_exit == 28:
        return "drop"
    if curl_exit == 6:
        return "dns-fail"
    if curl_exit in (7, 35, 52, 56):
        return "refused"
    return "error"
