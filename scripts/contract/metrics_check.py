"""Reads a live server's GET /metrics with parsers no one here wrote.

prometheus_client (the Python client library's own parser of the text format) must read every
line, and what it reads must hold: the families docs/operating.md lists, route labels that are
templates (never raw paths), histograms whose buckets add up, and build info naming the backend.
Then `promtool check metrics` (Prometheus's own linter) must find nothing to say, when promtool
is installed (scripts/contract-test installs Debian's prometheus package for it when it can).

    python metrics_check.py --base-url http://127.0.0.1:8080 --backend sqlite [--token T]
"""

import argparse
import re
import shutil
import subprocess
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

# Family names as prometheus_client reports them (a counter's `_total` is its samples' suffix).
EXPECTED = {
    "lhs_http_requests": "counter",
    "lhs_http_request_duration_seconds": "histogram",
    "lhs_http_requests_in_flight": "gauge",
    "lhs_db_pool_size": "gauge",
    "lhs_db_pool_in_use": "gauge",
    "lhs_db_pool_idle": "gauge",
    "lhs_db_pool_waiting": "gauge",
    "lhs_db_pool_checkout_seconds": "histogram",
    "lhs_database_up": "gauge",
    "lhs_cache_hits": "counter",
    "lhs_cache_misses": "counter",
    "lhs_cache_bytes": "gauge",
    "lhs_webhook_outbox_depth": "gauge",
    "lhs_webhook_outbox_oldest_age_seconds": "gauge",
    "lhs_webhook_outbox_failed": "gauge",
    "lhs_webhook_delivery_failures": "counter",
    "lhs_changelog_newest_seq": "gauge",
    "lhs_rate_limit_rejections": "counter",
    "lhs_build_info": "gauge",
}

# A route label is a template from the route table, or `unmatched`: no segment is a bare
# number, and nothing from a query string.
TEMPLATE = re.compile(r"^(unmatched|(/[A-Za-z0-9_.{}:*-]*)+)$")


def fail(message):
    print(f"metrics check: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--backend", required=True, choices=["sqlite", "postgres"])
    parser.add_argument("--token")
    args = parser.parse_args()

    request = urllib.request.Request(args.base_url + "/metrics")
    if args.token:
        request.add_header("Authorization", "Bearer " + args.token)
    with urllib.request.urlopen(request, timeout=30) as response:
        content_type = response.headers.get("Content-Type", "")
        text = response.read().decode()
    if not content_type.startswith("text/plain; version=0.0.4"):
        fail(f"Content-Type is {content_type!r}")

    families = {family.name: family for family in text_string_to_metric_families(text)}
    for name, kind in EXPECTED.items():
        if name not in families:
            fail(f"{name} is missing")
        if families[name].type != kind:
            fail(f"{name} is a {families[name].type}, not a {kind}")

    routes = set()
    for sample in families["lhs_http_requests"].samples:
        route = sample.labels.get("route", "")
        if not TEMPLATE.match(route) or any(part.isdigit() for part in route.split("/")):
            fail(f"a route label is not a template: {route!r}")
        if set(sample.labels) != {"method", "route", "status"}:
            fail(f"lhs_http_requests_total has labels {sorted(sample.labels)}")
        routes.add(route)
    if "/api/v1/rounds/{id}" not in routes:
        fail(f"no requests counted under /api/v1/rounds/{{id}}: {sorted(routes)}")

    for name in ("lhs_http_request_duration_seconds", "lhs_db_pool_checkout_seconds"):
        series = {}
        for sample in families[name].samples:
            key = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
            entry = series.setdefault(key, {"buckets": [], "count": None})
            if sample.name.endswith("_bucket"):
                entry["buckets"].append((float(sample.labels["le"]), sample.value))
            elif sample.name.endswith("_count"):
                entry["count"] = sample.value
        if not series:
            fail(f"{name} has no samples")
        for key, entry in series.items():
            counts = [value for _, value in sorted(entry["buckets"])]
            if counts != sorted(counts):
                fail(f"{name}{dict(key)}: bucket counts are not cumulative")
            if not counts or counts[-1] != entry["count"]:
                fail(f"{name}{dict(key)}: the +Inf bucket is not the count")

    info = families["lhs_build_info"].samples
    if not any(s.labels.get("backend") == args.backend and s.value == 1 for s in info):
        fail(f"lhs_build_info does not name the {args.backend} backend: {info}")
    if not all(s.labels.get("version") and s.labels.get("commit") for s in info):
        fail(f"lhs_build_info lacks a version or a commit: {info}")

    promtool = shutil.which("promtool")
    if promtool:
        lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        if lint.returncode != 0 or lint.stdout.strip() or lint.stderr.strip():
            fail(f"promtool check metrics: {lint.stdout}{lint.stderr}")
        checked = "prometheus_client and promtool"
    else:
        checked = "prometheus_client (promtool is not installed)"
    print(f"metrics check: {len(families)} families read by {checked}; routes: {len(routes)} templates")


if __name__ == "__main__":
    main()
