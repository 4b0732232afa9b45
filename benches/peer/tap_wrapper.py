"""Run the unmodified tap-helpscout 1.2.2 against a local Help Scout simulator.

The tap hard-codes ``https://api.helpscout.net`` for both the token URL
(``/v2/oauth2/token``) and the API base (``/v2``) and sends everything through
one ``requests.Session``.  This module patches the ``requests`` layer (not the
tap) so that every request for ``https://api.helpscout.net`` goes to the
simulator's loopback address instead, then calls the tap's own entry point
``tap_helpscout.main()`` with the remaining arguments.

Any request that would leave the loopback interface is refused, so a mistake
in the redirect can never reach the real service.

Usage (inside the tap's virtual environment)::

    python tap_wrapper.py --sim-base http://127.0.0.1:PORT \
        [--request-log FILE] -- -c config.json --catalog catalog.json

``--request-log`` writes one JSON line per HTTP request (start time, method,
path, status, duration) when the process exits.
"""

import atexit
import ipaddress
import json
import os
import sys
import time
from urllib.parse import urlsplit

HELPSCOUT_ORIGINS = ("https://api.helpscout.net", "http://api.helpscout.net")
LOOPBACK_NAMES = {"localhost"}


def _usage(message):
    sys.stderr.write(f"tap_wrapper: {message}\n")
    sys.stderr.write("usage: tap_wrapper.py --sim-base URL [--request-log FILE] -- TAP_ARGS...\n")
    sys.exit(2)


def _parse_own_args(argv):
    """Split ``argv`` into the wrapper's options and the tap's arguments."""
    sim_base = os.environ.get("HELPSCOUT_SIM_BASE")
    request_log = None
    tap_args = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            tap_args = argv[i + 1:]
            break
        if arg in ("--sim-base", "--request-log"):
            if i + 1 >= len(argv):
                _usage(f"{arg} needs a value")
            if arg == "--sim-base":
                sim_base = argv[i + 1]
            else:
                request_log = argv[i + 1]
            i += 2
            continue
        # No "--": everything from here on belongs to the tap.
        tap_args = argv[i:]
        break
    if not sim_base:
        _usage("--sim-base (or $HELPSCOUT_SIM_BASE) is required")
    return sim_base.rstrip("/"), request_log, tap_args


def _is_loopback(url):
    host = urlsplit(url).hostname or ""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def install_redirect(sim_base, request_log=None):
    """Patch ``requests`` so that Help Scout URLs go to ``sim_base``."""
    if not _is_loopback(sim_base):
        _usage(f"refusing a simulator address that is not loopback: {sim_base}")

    # The redirect must not be routed through a proxy from the environment.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        os.environ.pop(var, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"

    import requests
    import requests.adapters

    def rewrite(url):
        for origin in HELPSCOUT_ORIGINS:
            if url == origin or url.startswith(origin + "/") or url.startswith(origin + "?"):
                return sim_base + url[len(origin):]
        return url

    original_request = requests.Session.request
    original_send = requests.adapters.HTTPAdapter.send

    def request(self, method, url, *args, **kwargs):
        return original_request(self, method, rewrite(url), *args, **kwargs)

    log = []

    def send(self, prepared, *args, **kwargs):
        # Also covers redirects, which requests sends without Session.request.
        prepared.url = rewrite(prepared.url)
        if not _is_loopback(prepared.url):
            raise requests.exceptions.ConnectionError(
                f"tap_wrapper: refusing a request outside the loopback interface: {prepared.url}"
            )
        started = time.time()
        t0 = time.perf_counter()
        status = None
        try:
            response = original_send(self, prepared, *args, **kwargs)
            status = response.status_code
            return response
        finally:
            if request_log is not None:
                parts = urlsplit(prepared.url)
                log.append(
                    {
                        "t": round(started, 6),
                        "method": prepared.method,
                        "path": parts.path,
                        "query": parts.query,
                        "status": status,
                        "ms": round((time.perf_counter() - t0) * 1000.0, 3),
                    }
                )

    requests.Session.request = request
    requests.adapters.HTTPAdapter.send = send

    if request_log is not None:

        def flush():
            with open(request_log, "w", encoding="utf-8") as handle:
                for entry in log:
                    handle.write(json.dumps(entry) + "\n")

        atexit.register(flush)


def main(argv=None):
    sim_base, request_log, tap_args = _parse_own_args(list(sys.argv[1:] if argv is None else argv))
    install_redirect(sim_base, request_log)
    # Import only after the patch is in place, then run the tap's own entry point.
    import tap_helpscout

    sys.argv = ["tap-helpscout"] + tap_args
    tap_helpscout.main()


if __name__ == "__main__":
    main()
