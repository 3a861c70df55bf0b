#!/usr/bin/env python3
"""TEST DOUBLE of IBM Cloud IAM and IBM Key Protect (no server or emulator of either exists that
can run here). It speaks the subset of the real HTTP API that Rook (through IBM's Go client) and
the rook-kms-webhook probe use, with the real paths, headers, status codes and body shapes:

  POST /identity/token, /oidc/token   IAM API-key exchange (form grant_type + apikey) -> JWT
  HEAD /api/v2/keys                   key count in Key-Total
  GET  /api/v2/keys                   key collection (metadata only)
  POST /api/v2/keys                   create / import a key (name, aliases, payload, extractable)
  GET  /api/v2/keys/<id|alias>        the key with its payload
  GET  /api/v2/keys/<id|alias>/metadata
  DELETE /api/v2/keys/<id>            destroy (state 5), 200 with representation or 204

Every Key Protect call needs `authorization: Bearer <token from this IAM>` and a
`bluemix-instance` this double serves, else 401 UNAUTHORIZED_ERR, as the real service answers.
tests/doubles/keyprotect_contract.py drives it with IBM's official Python client (`keyprotect`),
so that the double stays honest. Listens on 127.0.0.1 only, over TLS.
"""

import argparse
import base64
import json
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

KEY_TYPE = "application/vnd.ibm.kms.key+json"
ERROR_TYPE = "application/vnd.ibm.kms.error+json"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class State:
    def __init__(self, api_keys, instances):
        self.api_keys = set(api_keys)
        self.instances = set(instances)
        self.tokens = set()
        self.keys = {}  # (instance, id) -> key dict
        self.lock = threading.Lock()

    def issue_token(self):
        now = int(time.time())
        header = b64url(json.dumps({"alg": "RS256", "kid": "test-double", "typ": "JWT"}).encode())
        claims = b64url(json.dumps({"iss": "keyprotect-test-double", "sub": "ServiceId-double", "iat": now, "exp": now + 3600}).encode())
        token = f"{header}.{claims}.{b64url(uuid.uuid4().bytes)}"
        with self.lock:
            self.tokens.add(token)
        return token, now


def key_view(key, with_payload):
    view = {k: v for k, v in key.items() if k != "payload" or with_payload}
    return view


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "keyprotect-test-double"

    def log_message(self, fmt, *args):  # keep stdout for the harness; log to stderr briefly
        pass

    # --- plumbing ---------------------------------------------------------------------------
    def body(self):
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, status, payload=None, content_type="application/json", extra=None):
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def kp_error(self, status, message, code=None):
        resource = {"errorMsg": message}
        if code:
            resource["reasons"] = [{"code": code, "message": message, "status": status, "moreInfo": "https://cloud.ibm.com/apidocs/key-protect"}]
        self.send(status, {"metadata": {"collectionType": ERROR_TYPE, "collectionTotal": 1}, "resources": [resource]})

    def collection(self, status, keys, with_payload=False, extra=None):
        self.send(status, {"metadata": {"collectionType": KEY_TYPE, "collectionTotal": len(keys)},
                           "resources": [key_view(k, with_payload) for k in keys]}, extra=extra)

    # --- IAM ----------------------------------------------------------------------------------
    def iam(self):
        form = parse_qs(self.body().decode(errors="replace"))
        grant = form.get("grant_type", [""])[0]
        api_key = form.get("apikey", [""])[0]
        if grant != "urn:ibm:params:oauth:grant-type:apikey":
            return self.send(400, {"errorCode": "BXNIM0109E", "errorMessage": "Property missing or empty. Property name: grant_type", "context": {"requestId": str(uuid.uuid4())}})
        if api_key not in self.server.state.api_keys:
            return self.send(400, {"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found.", "context": {"requestId": str(uuid.uuid4())}})
        token, now = self.server.state.issue_token()
        self.send(200, {"access_token": token, "refresh_token": "not_supported", "token_type": "Bearer", "expires_in": 3600, "expiration": now + 3600, "scope": "ibm openid"})

    # --- Key Protect ------------------------------------------------------------------------
    def authorized(self):
        state = self.server.state
        auth = self.headers.get("authorization", "")
        instance = self.headers.get("bluemix-instance", "")
        if not auth.startswith("Bearer ") or auth[7:] not in state.tokens or instance not in state.instances:
            self.kp_error(401, "Unauthorized: The user does not have access to the specified resource", "UNAUTHORIZED_ERR")
            return None
        return instance

    def find(self, instance, ref):
        with self.server.state.lock:
            for (inst, _), key in self.server.state.keys.items():
                if inst == instance and (key["id"] == ref or ref in key.get("aliases", [])):
                    return key
        return None

    def route(self):
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        if self.command == "POST" and url.path in ("/identity/token", "/oidc/token"):
            return self.iam()
        if parts[:3] != ["api", "v2", "keys"]:
            return self.kp_error(404, "Not Found: the resource does not exist")
        instance = self.authorized()
        if instance is None:
            return None
        state = self.server.state
        if len(parts) == 3:
            if self.command in ("GET", "HEAD"):
                with state.lock:
                    keys = [k for (i, _), k in state.keys.items() if i == instance and k["state"] != 5]
                return self.collection(200, keys, extra={"key-total": str(len(keys))})
            if self.command == "POST":
                return self.create(instance)
        ref = parts[3] if len(parts) > 3 else ""
        key = self.find(instance, ref)
        if key is None:
            return self.kp_error(404, "Not Found: Key could not be retrieved. Please see `reasons` for more details.", "KEY_NOT_FOUND_ERR")
        if len(parts) == 4 and self.command == "GET":
            return self.collection(200, [key], with_payload=key["state"] != 5)
        if len(parts) == 5 and parts[4] == "metadata" and self.command == "GET":
            return self.collection(200, [key])
        if len(parts) == 4 and self.command == "DELETE":
            with state.lock:
                key["state"] = 5
                key["deleted"] = True
                key["deletionDate"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            if "return=representation" in (self.headers.get("prefer") or ""):
                return self.collection(200, [key])
            return self.send(204)
        return self.kp_error(405, "Method Not Allowed")

    def create(self, instance):
        try:
            doc = json.loads(self.body() or b"{}")
            meta, resources = doc["metadata"], doc["resources"]
            if meta.get("collectionType") != KEY_TYPE or meta.get("collectionTotal") != len(resources) or len(resources) != 1:
                return self.kp_error(400, "Bad Request: collectionTotal does not match resources", "COLLECTION_TOTAL_MISMATCH_ERR")
            res = resources[0]
            name = res["name"]
        except (ValueError, KeyError, TypeError):
            return self.kp_error(400, "Bad Request: the request body is not valid", "BAD_BODY_ERR")
        aliases = res.get("aliases") or []
        for alias in aliases:
            if self.find(instance, alias) is not None:
                return self.kp_error(409, "Conflict: Alias already exists", "KEY_ALIAS_NOT_UNIQUE_ERR")
        payload = res.get("payload")
        if payload is not None:
            try:
                if not (0 < len(base64.b64decode(payload, validate=True)) <= 7500):
                    raise ValueError
            except ValueError:
                return self.kp_error(400, "Bad Request: payload must be base64 of at most 7,500 bytes", "INVALID_FIELD_ERR")
        key_id = str(uuid.uuid4())
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        key = {"type": KEY_TYPE, "id": key_id, "name": name, "aliases": aliases, "state": 1,
               "extractable": bool(res.get("extractable", False)), "imported": payload is not None,
               "crn": f"crn:v1:bluemix:public:kms:us-south:a/double:{instance}:key:{key_id}",
               "creationDate": now, "lastUpdateDate": now, "deleted": False,
               "dualAuthDelete": {"enabled": False},
               "payload": payload or base64.b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode()}
        with self.server.state.lock:
            self.server.state.keys[(instance, key_id)] = key
        self.collection(201, [key], with_payload=key["extractable"])

    def do_GET(self):
        self.route()

    do_HEAD = do_POST = do_DELETE = do_GET


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--api-key", action="append", required=True)
    ap.add_argument("--instance", action="append", required=True)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args.api_key, args.instance)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    # The handshake happens in the handler thread, so a slow client cannot block accept().
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    print(f"keyprotect test double listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
