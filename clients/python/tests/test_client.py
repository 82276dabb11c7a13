"""The client against a real `vidx serve`: numpy in and out, datetimes,
batching with progress, paged reads, errors with code and field, linking and
triage streams, snapshots, TLS and token options."""

from __future__ import annotations

import pathlib
import subprocess
from datetime import datetime, timezone

import grpc
import numpy as np
import pytest

from vidx_client import Client, Filter, Metadata, VidxError, field_of
from vidx_client._pb import vidx_pb2 as pb
from vidx_client._pb import vidx_pb2_grpc as pb_grpc

from conftest import start_server, stop_server, vidx_bin

UTC = timezone.utc


def unit_rows(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


def planted(rng: np.random.Generator, n_series: int = 5, per: int = 8, dim: int = 64):
    """Series of `per` media around random centres (pairwise cosine ~0.86),
    each media in its own upload, several countries and years."""
    centres = unit_rows(rng.standard_normal((n_series, dim)))
    ids, vecs, metas = [], [], []
    for s in range(n_series):
        noise = rng.standard_normal((per, dim)) / np.sqrt(dim)
        vecs.append(unit_rows(centres[s] + 0.4 * noise))
        for j in range(per):
            ids.append(f"s{s}-m{j}")
            metas.append(
                Metadata(
                    upload_id=f"up-{s}-{j}",
                    case_id=f"case-{s}",
                    country=["DE", "FR", "BR", "IT"][j % 4],
                    agency="DE-BKA",
                    captured_at=datetime(2014 + s, 1, 1 + j, tzinfo=UTC),
                    uploaded_at=datetime(2020, 1, 1 + s, tzinfo=UTC),
                    tags=["indoor"],
                )
            )
    return centres, ids, np.vstack(vecs), metas


def test_collection_lifecycle(client, name):
    info = client.create_collection(name, 16, metric="l2", kind="face")
    assert (info.name, info.dim, info.metric, info.kind, info.points) == (name, 16, "l2", "face", 0)
    assert name in [c.name for c in client.list_collections()]
    with pytest.raises(VidxError) as e:
        client.create_collection(name, 16)
    assert e.value.code == grpc.StatusCode.ALREADY_EXISTS
    client.drop_collection(name)
    with pytest.raises(VidxError) as e:
        client.describe_collection(name)
    assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_numpy_in_and_out_with_batches_progress_and_pages(client, server, name):
    rng = np.random.default_rng(1)
    n, dim = 3000, 512
    vectors = unit_rows(rng.standard_normal((n, dim)))
    ids = [f"p{i}" for i in range(n)]
    client.create_collection(name, dim)
    seen = []
    assert client.upsert(name, ids, vectors, batch_size=700, progress=lambda d, t: seen.append((d, t))) == n
    assert seen == [(700, n), (1400, n), (2100, n), (2800, n), (3000, n)]

    pts = client.get(name, ids[::-1], page_size=1000)
    assert pts.ids == ids[::-1]
    assert pts.vectors.dtype == np.float32 and pts.vectors.shape == (n, dim)
    np.testing.assert_allclose(pts.vectors, vectors[::-1], atol=1e-6)
    assert len(client.get(name, ["p1", "nope"]).ids) == 1

    # Why Get pages: 3,000 such points are over grpcio's default 4 MiB.
    with grpc.insecure_channel(server.target) as ch:
        raw = pb_grpc.VectorIndexStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            raw.Get(pb.GetRequest(collection=name, ids=ids))
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    # The default limits take a 2,000-point batch of 512 floats (~4.2 MB)
    # in one message.
    more = unit_rows(rng.standard_normal((2000, dim)))
    assert client.upsert(name, [f"q{i}" for i in range(2000)], more, batch_size=2000) == 2000
    assert client.describe_collection(name).points == n + 2000


def test_search_with_filters_and_datetimes(client, name):
    rng = np.random.default_rng(2)
    centres, ids, vectors, metas = planted(rng)
    client.create_collection(name, vectors.shape[1])
    client.upsert(name, ids, vectors, metas)
    got = client.get(name, ["s2-m3"]).metadata[0]
    assert got.captured_at == datetime(2016, 1, 4, tzinfo=UTC)
    assert got == metas[2 * 8 + 3]

    hits = client.search(name, centres[1], k=8)
    assert {h.id.split("-")[0] for h in hits} == {"s1"}
    assert hits == sorted(hits, key=lambda h: h.distance)
    per_query = client.search(name, centres[:3], k=2)
    assert [q[0].id.split("-")[0] for q in per_query] == ["s0", "s1", "s2"]

    # Captured in 2016 or later, only from France: a datetime filter.
    f = Filter(captured_after=datetime(2016, 1, 1, tzinfo=UTC), countries_any=["FR"])
    hits = client.search(name, centres[0], k=50, filter=f)
    assert hits and all(h.metadata.country == "FR" for h in hits)
    assert all(h.metadata.captured_at >= datetime(2016, 1, 1, tzinfo=UTC) for h in hits)
    # A naive datetime is taken as UTC.
    naive = client.search(name, centres[0], k=50, filter=Filter(captured_before=datetime(2015, 1, 1)))
    assert naive and {h.id.split("-")[0] for h in naive} == {"s0"}

    like = client.search_ids(name, ["s3-m0"], k=3, exclude_same_upload=True)[0]
    assert "s3-m0" not in [h.id for h in like] and like[0].id.startswith("s3-")


def test_errors_carry_status_and_field(client, name):
    client.create_collection(name, 8)
    good = unit_rows(np.ones((4, 8)))
    with pytest.raises(VidxError) as e:
        client.upsert(name, ["a", "b", "c", "d"], np.vstack([good[:3], np.full((1, 8), np.nan)]))
    err = e.value
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.field == "points[3].vector[0]", err.details
    assert "must be finite" in err.details

    with pytest.raises(VidxError) as e:
        client.search(name, good[0], k=0)
    assert (e.value.code, e.value.field) == (grpc.StatusCode.INVALID_ARGUMENT, "k")

    with pytest.raises(VidxError) as e:
        client.search(name, np.ones(3, dtype=np.float32), k=1)
    assert e.value.field == "queries[0].vector.values", e.value.details

    with pytest.raises(VidxError) as e:
        client.get("no-such-collection", ["a"])
    assert e.value.code == grpc.StatusCode.NOT_FOUND and e.value.field is None


def test_field_of_reads_the_field_a_message_starts_with():
    assert field_of('batch 2 (40 points of earlier batches were applied): points[3] (id "a b"): vector has 3 values; x') == "points[3].vector"
    assert field_of("k is 0; k must be 1 to 1000") == "k"
    assert field_of('filter.countries_any[0] "XX" is not an assigned ISO 3166-1 alpha-2 code') == "filter.countries_any[0]"
    assert field_of("the triage stream sent no message") is None


def test_link_series_upload_and_triage_streams(client, name):
    rng = np.random.default_rng(3)
    centres, ids, vectors, metas = planted(rng)
    client.create_collection(name, vectors.shape[1])
    client.upsert(name, ids, vectors, metas)

    stages = []
    run = client.link_series(name, progress=lambda stage, done, total: stages.append(stage))
    series = list(run)
    assert run.summary is not None and run.summary.series == len(series) and run.summary.stored
    assert "knn-images" in stages
    big = sorted((s for s in series if len(s.media_ids) > 1), key=lambda s: s.series_id)
    assert len(big) == 5
    for s in big:
        prefix = s.media_ids[0].split("-")[0]
        assert all(m.startswith(prefix + "-") for m in s.media_ids) and len(s.media_ids) == 8
        assert s.cross_border and isinstance(s.captured_from, datetime)
        assert s.evidence and s.evidence[0].kind in ("image", "near_duplicate", "image_and_face")

    # A new upload of two media near series 4 joins it.
    new = unit_rows(centres[4] + 0.3 * rng.standard_normal((2, vectors.shape[1])) / 8)
    client.upsert(name, ["n0", "n1"], new, [Metadata(upload_id="up-new", country="GB")] * 2)
    r = client.link_upload(name, "up-new")
    assert {m.media_id: m.outcome for m in r.media} == {"n0": "joined", "n1": "joined"}
    joined = {m.series_id for m in r.media}
    assert len(joined) == 1 and any("s4-m0" in s.media_ids for s in r.series)

    # Triage: 4 near known series, 3 unrelated.
    known = unit_rows(centres[:4] + 0.3 * rng.standard_normal((4, vectors.shape[1])) / 8)
    fresh = unit_rows(rng.standard_normal((3, vectors.shape[1])))
    items = [f"k{i}" for i in range(4)] + [f"f{i}" for i in range(3)]
    sent = []
    run = client.triage(name, items, np.vstack([known, fresh]), batch_size=3, progress=lambda d, t: sent.append(d))
    verdicts = {r.id: r.verdict for r in run}
    assert sent == [3, 6, 7]
    assert verdicts == {**{f"k{i}": "known" for i in range(4)}, **{f"f{i}": "new" for i in range(3)}}
    assert run.summary is not None and (run.summary.items, run.summary.known, run.summary.new) == (7, 4, 3)


def test_snapshot_into_a_directory(client, name, tmp_path):
    rng = np.random.default_rng(4)
    _, ids, vectors, metas = planted(rng)
    client.create_collection(name, vectors.shape[1])
    client.upsert(name, ids, vectors, metas)
    client.flush(name)
    got = []
    manifest = client.create_snapshot(name, tmp_path / "snap", progress=got.append)
    assert manifest["collection"] == name and manifest["points"] == len(ids)
    assert got and got[-1] == sum(f["bytes"] for f in manifest["files"]) + (tmp_path / "snap" / "snapshot.json").stat().st_size
    out = subprocess.run([str(vidx_bin()), "snapshot", "verify", str(tmp_path / "snap")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "every checksum matches" in out.stdout
    with pytest.raises(ValueError):
        client.create_snapshot(name, tmp_path / "snap")


def test_token_and_tls_options(server, name, tmp_path):
    # A token is sent as a bearer header and checked even by an open server:
    # one it does not know is UNAUTHENTICATED.
    with Client(server.target, token="s3cret", timeout=10) as c:
        with pytest.raises(VidxError) as e:
            c.create_collection(name, 4)
        assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
    # A server with a token: the token is let in, a call without one or with
    # another is not.
    made = subprocess.run(
        [str(vidx_bin()), "token", "create", "--data-dir", str(tmp_path),
         "--agency", "A", "--role", "admin"],
        capture_output=True, text=True, check=True,
    )
    token = made.stdout.strip()
    assert token and token != "s3cret"
    s = start_server(tmp_path)
    try:
        with Client(s.target, token=token, timeout=10) as c:
            c.create_collection(name, 4)
            assert c.describe_collection(name).dim == 4
        for other in (None, "s3cret"):
            with Client(s.target, token=other, timeout=10) as c:
                with pytest.raises(VidxError) as e:
                    c.list_collections()
                assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
    finally:
        stop_server(s)
    # TLS against a plaintext server fails the handshake: UNAVAILABLE.
    with Client(server.target, tls=True, timeout=5) as c:
        with pytest.raises(VidxError) as e:
            c.list_collections()
        assert e.value.code == grpc.StatusCode.UNAVAILABLE
    # An https:// target means TLS too.
    with Client(f"https://{server.target}", timeout=5) as c:
        with pytest.raises(VidxError) as e:
            c.list_collections()
        assert e.value.code == grpc.StatusCode.UNAVAILABLE


def test_delete(client, name):
    client.create_collection(name, 4)
    client.upsert(name, ["a", "b"], unit_rows(np.eye(4)[:2] + 0.1))
    assert client.delete(name, ["a", "zzz"]) == 1
    assert client.get(name, ["a", "b"]).ids == ["b"]


def test_the_readme_example_runs(server, name, capsys):
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert 12 <= len(code.strip().splitlines()) <= 17
    code = code.replace('"127.0.0.1:50051"', repr(server.target)).replace('"images"', repr(name))
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "5000 5000" in out and " series" in out
    assert "INVALID_ARGUMENT queries[0].vector.values" in out.replace("StatusCode.", "")
