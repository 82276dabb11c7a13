"""The committed stubs are what grpcio-tools makes of proto/vidx/v1/vidx.proto
today: a proto change without regenerated stubs fails here."""

import importlib.util
import pathlib
import sys
import tempfile

import pytest

SCRIPTS = pathlib.Path(__file__).resolve().parents[1] / "scripts"


def test_stubs_match_the_proto():
    if importlib.util.find_spec("grpc_tools") is None:
        pytest.skip("grpcio-tools is not installed (requirements-ci.txt installs it)")
    sys.path.insert(0, str(SCRIPTS))
    try:
        import gen_stubs
    finally:
        sys.path.remove(str(SCRIPTS))
    with tempfile.TemporaryDirectory() as tmp:
        fresh = gen_stubs.generate(pathlib.Path(tmp))
    for name, text in fresh.items():
        committed = (gen_stubs.OUT / name).read_text()
        assert committed == text, (
            f"{name} differs from the proto: run python clients/python/scripts/gen_stubs.py"
        )
