"""`/metrics` after a mixed workload, parsed by prometheus_client's parser:
request counters and histograms by RPC and status, rejected requests,
collection gauges, WAL and seal metrics, linking and triage runs move; the
health endpoints answer; the Grafana dashboard charts metrics that exist."""

from __future__ import annotations

import json
import pathlib
import re
import urllib.error
import urllib.request

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from vidx_client import VidxError

from test_client import planted

REPO = pathlib.Path(__file__).resolve().parents[3]


def scrape(server) -> dict[tuple[str, tuple], float]:
    """Every sample as {(name, sorted labels): value}."""
    with urllib.request.urlopen(server.metrics_url + "/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_metrics_move_with_a_mixed_workload(client, server, name):
    before = scrape(server)
    rng = np.random.default_rng(5)
    centres, ids, vectors, metas = planted(rng, n_series=4, per=6, dim=32)
    client.create_collection(name, 32)
    client.upsert(name, ids, vectors, metas, batch_size=10)
    client.flush(name)
    for c in centres:
        client.search(name, c, k=5)
    with pytest.raises(VidxError):
        client.search(name, centres[0], k=0)
    with pytest.raises(VidxError):
        client.describe_collection("no-such-collection")
    run = client.link_series(name)
    n_series = len(list(run))
    triage = client.triage(name, ["x", "y"], np.vstack([centres[0], -centres[0]]))
    list(triage)
    after = scrape(server)

    def moved(metric, **labels):
        return value(after, metric, **labels) - value(before, metric, **labels)

    assert moved("vidx_requests_total", rpc="Search", code="Ok") == 4
    assert moved("vidx_requests_total", rpc="Search", code="InvalidArgument") == 1
    assert moved("vidx_requests_total", rpc="DescribeCollection", code="NotFound") == 1
    assert moved("vidx_requests_total", rpc="Upsert", code="Ok") == 1
    assert moved("vidx_requests_total", rpc="LinkSeries", code="Ok") == 1
    assert moved("vidx_requests_rejected_total", rpc="Search", reason="InvalidArgument") == 1
    assert moved("vidx_requests_rejected_total", rpc="DescribeCollection", reason="NotFound") == 1
    # Histograms: count, sum and cumulative buckets up to +Inf.
    assert moved("vidx_request_duration_seconds_count", rpc="Search", code="Ok") == 4
    assert moved("vidx_request_duration_seconds_sum", rpc="Search", code="Ok") > 0
    assert value(after, "vidx_request_duration_seconds_bucket", rpc="Search", code="Ok", le="+Inf") == value(
        after, "vidx_request_duration_seconds_count", rpc="Search", code="Ok"
    )
    # Collection gauges.
    assert value(after, "vidx_collection_points", collection=name) == len(ids)
    assert value(after, "vidx_collection_segments", collection=name) == 2
    assert value(after, "vidx_collection_disk_bytes", collection=name) > 0
    assert value(after, "vidx_collection_memory_bytes", collection=name) > 0
    assert value(after, "vidx_collection_verification", collection=name, state="verified") == 1
    assert value(after, "vidx_collection_available", collection=name) == 1
    assert value(after, "vidx_ready") == 1
    # Storage.
    assert moved("vidx_wal_written_bytes_total", collection=name) > vectors.nbytes
    assert moved("vidx_wal_fsync_duration_seconds_count", collection=name) >= 3
    assert moved("vidx_seal_duration_seconds_count", collection=name) == 1
    # Linking and triage runs.
    assert moved("vidx_link_runs_total", run="link_series", collection=name, outcome="ok") == 1
    assert moved("vidx_link_run_duration_seconds_count", run="link_series", collection=name, outcome="ok") == 1
    assert moved("vidx_link_run_media_total", run="link_series", collection=name) == len(ids)
    assert value(after, "vidx_link_run_series", run="link_series", collection=name) == n_series
    assert value(after, "vidx_link_last_success_timestamp_seconds", run="link_series", collection=name) > 1.6e9
    assert moved("vidx_link_runs_total", run="triage", collection=name, outcome="ok") == 1
    assert moved("vidx_triage_items_total", collection=name, verdict="known") == 1
    assert moved("vidx_triage_items_total", collection=name, verdict="new") == 1

    # A failed run is counted as one.
    with pytest.raises(VidxError):
        client.link_upload(name + "-gone", "u")
    client.drop_collection(name)
    gone = scrape(server)
    assert value(gone, "vidx_link_runs_total", run="link_upload", collection=name + "-gone", outcome="error") == 1
    # A dropped collection's gauges go with it.
    assert ("vidx_collection_points", (("collection", name),)) not in gone


def test_health_and_readiness(server):
    assert get(server.metrics_url + "/healthz") == (200, "ok\n")
    code, body = get(server.metrics_url + "/readyz")
    assert code == 200 and body.startswith("ready\n"), body


def dashboard_metrics() -> set[str]:
    d = json.loads((REPO / "deploy" / "grafana" / "vidx.json").read_text())
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    assert exprs, "the dashboard has no queries"
    names = set()
    for e in exprs:
        names |= set(re.findall(r"\bvidx_[a-z_]+", e))
    return names


def base_name(sample: str, registered: set[str]) -> str:
    """The family a sample name belongs to (`x_bucket` → `x` for a histogram `x`)."""
    for suffix in ("_bucket", "_count", "_sum"):
        if sample.endswith(suffix) and sample[: -len(suffix)] in registered:
            return sample[: -len(suffix)]
    return sample


def test_the_dashboard_charts_metrics_that_exist(client, server, name):
    # Every family the server registers, from its source: some appear only
    # after their first event (a failed seal, a snapshot).
    src = (REPO / "src" / "metrics.rs").read_text()
    registered = set(re.findall(r'"(vidx_[a-z_]+)"', src))
    base = {base_name(n, registered) for n in dashboard_metrics()}
    assert base <= registered, f"charted but not registered: {sorted(base - registered)}"
    # And the dashboard covers each area the issue asks for.
    for needed in (
        "vidx_requests_total", "vidx_request_duration_seconds", "vidx_requests_rejected_total",
        "vidx_collection_points", "vidx_collection_disk_bytes", "vidx_collection_memory_bytes",
        "vidx_collection_wal_bytes", "vidx_wal_fsync_duration_seconds", "vidx_seal_duration_seconds",
        "vidx_merge_duration_seconds", "vidx_collection_verification", "vidx_link_runs_total",
        "vidx_link_run_duration_seconds", "vidx_link_run_media_total", "vidx_link_run_series",
    ):
        assert needed in base, f"the dashboard does not chart {needed}"
    # What a scrape shows after a little traffic is among them.
    client.create_collection(name, 4)
    shown = {n for n, _ in scrape(server)}
    unknown = {n for n in shown if base_name(n, registered) not in registered}
    assert not unknown, sorted(unknown)
