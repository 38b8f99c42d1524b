#!/usr/bin/env python3
# tests/e2e/sts-web.py IP CERT KEY: the MTA-STS policy web server of
# tests/e2e/tlspolicy.sh (RFC 8461 section 3.3): HTTPS on port 443 of IP,
# GET /.well-known/mta-sts.txt answered text/plain with the policy of the
# Host asked for, 404 for anything else. Runs until killed.
import http.server
import ssl
import sys

POLICIES = {
    "mta-sts.sts.example": "version: STSv1\r\nmode: enforce\r\nmx: mx.sts.example\r\nmax_age: 86400\r\n",
    "mta-sts.stsbad.example": "version: STSv1\r\nmode: enforce\r\nmx: mx.elsewhere.example\r\nmax_age: 86400\r\n",
}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = POLICIES.get(self.headers.get("Host", "").split(":")[0])
        if self.path != "/.well-known/mta-sts.txt" or body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    ip, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
    srv = http.server.ThreadingHTTPServer((ip, 443), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
