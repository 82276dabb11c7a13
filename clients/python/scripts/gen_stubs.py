"""Generates the committed gRPC stubs of vidx_client from proto/vidx/v1/vidx.proto.

    python clients/python/scripts/gen_stubs.py          # rewrite src/vidx_client/_pb/
    python clients/python/scripts/gen_stubs.py --check  # exit 1 if they differ

Needs grpcio-tools (the version in requirements-ci.txt: the generated code
names it). The stubs are committed so that `pip install ./clients/python`
needs no code generation; tests/test_stubs.py checks they match the proto.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[2]
PROTO_ROOT = REPO / "proto"
PROTO = "vidx/v1/vidx.proto"
OUT = HERE.parent / "src" / "vidx_client" / "_pb"
FILES = ("vidx_pb2.py", "vidx_pb2.pyi", "vidx_pb2_grpc.py")


def generate(into: pathlib.Path) -> dict[str, str]:
    """The stub files' texts, generated under `into`."""
    from grpc_tools import protoc  # imported here: only generation needs it

    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={into}",
        f"--pyi_out={into}",
        f"--grpc_python_out={into}",
        PROTO,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    out = {}
    for name in FILES:
        text = (into / "vidx" / "v1" / name).read_text()
        # The generated module imports its sibling by the proto's package
        # path; inside vidx_client it is a relative import.
        text = text.replace("from vidx.v1 import vidx_pb2", "from . import vidx_pb2")
        out[name] = text
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(pathlib.Path(tmp))
    if a.check:
        stale = [n for n, t in files.items() if (OUT / n).read_text() != t]
        if stale:
            print(f"stale stubs in {OUT}: {', '.join(stale)}; run {pathlib.Path(__file__).name}")
            return 1
        print("stubs match the proto")
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (OUT / name).write_text(text)
    print(f"wrote {', '.join(files)} to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
