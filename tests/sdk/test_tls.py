"""Keyward trusts the system's CA store besides its bundled roots: an OpenAI-compatible server
on loopback with a certificate from a private CA (made here with openssl) is reachable once
that CA is in the store Keyward reads (`SSL_CERT_FILE`), and refused without it."""

import http.server
import json
import os
import ssl
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
import uuid

from conftest import _json_line, _start

TOKEN = "tls-suite-operator-token-" + uuid.uuid4().hex


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def private_ca_server(directory):
    """An HTTPS server on 127.0.0.1 whose certificate a fresh private CA signed."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "1", "-subj", "/CN=Keyward test CA", cwd=directory)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1", cwd=directory)
    with open(os.path.join(directory, "san.ext"), "w") as ext:
        ext.write("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "1", "-extfile", "san.ext", cwd=directory)

    class Models(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"object": "list", "data": [{"id": "private-model", "object": "model"}]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Models)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(directory, "server.pem"), os.path.join(directory, "server.key"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, os.path.join(directory, "ca.pem")


def gateway(extra_env, directory):
    env = {name: value for name, value in os.environ.items() if not name.startswith("KEYWARD_")}
    env.update({"KEYWARD_SERVER_LISTEN": "127.0.0.1:0", "KEYWARD_ADMIN_TOKEN": TOKEN,
                "KEYWARD_EGRESS_ALLOW_PRIVATE": "127.0.0.1", **extra_env})

    def listening(line):
        entry = _json_line(line)
        return entry.get("address") if entry.get("message") == "keyward listening" else None

    return _start([os.path.abspath(os.environ["KEYWARD_BIN"]), "serve"], env, directory, listening)


def admin(url, method, path, body=None):
    request = urllib.request.Request(url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def verify_private_endpoint(url, port):
    _, tenant = admin(url, "POST", "/admin/v1/tenants", {"name": "tls-" + uuid.uuid4().hex[:8]})
    _, credential = admin(url, "POST", f"/admin/v1/tenants/{tenant['id']}/credentials", {
        "provider": "openai-compatible", "label": "private", "secret": "sk-private-0123456789abcdef",
        "base_url": f"https://127.0.0.1:{port}/v1"})
    return admin(url, "POST", f"/admin/v1/tenants/{tenant['id']}/credentials/{credential['id']}/verify")


def test_a_private_ca_in_the_system_store_is_trusted():
    with tempfile.TemporaryDirectory() as directory:
        server, ca = private_ca_server(directory)
        port = server.server_address[1]
        trusting, address = gateway({"SSL_CERT_FILE": ca}, directory)
        try:
            status, answer = verify_private_endpoint(f"http://{address}", port)
            assert status == 200, answer
            assert answer["status"] == "active"
        finally:
            trusting.terminate()
            trusting.wait(timeout=15)
        untrusting, address = gateway({}, directory)
        try:
            status, answer = verify_private_endpoint(f"http://{address}", port)
            assert status >= 400, "an unknown CA is refused"
        finally:
            untrusting.terminate()
            untrusting.wait(timeout=15)
        server.shutdown()
