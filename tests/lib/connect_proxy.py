#!/usr/bin/env python3
"""A small HTTP CONNECT proxy, as a process: what a dual-stack proxy (such
as DeleGate) does for hosts of one address family that must reach servers
of the other. It listens on every address of both families, resolves the
target named in CONNECT on its own host, and relays bytes both ways. Each
tunnel opened is printed as "tunnel HOST:PORT -> ADDRESS", a refused one
as "refused TARGET: WHY", so a test can see where its clients went.

usage: connect_proxy.py PORT
Python standard library only.
"""
import select
import socket
import socketserver
import sys


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline(8192).decode("latin-1")
        while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
            pass
        parts = line.split()
        if len(parts) != 3 or parts[0] != "CONNECT" or ":" not in parts[1]:
            self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            return
        host, port = parts[1].rsplit(":", 1)
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except (OSError, ValueError) as e:
            print(f"refused {parts[1]}: {e}", flush=True)
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            return
        print(f"tunnel {parts[1]} -> {upstream.getpeername()[0]}", flush=True)
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        ends = [self.connection, upstream]
        try:
            while True:
                ready, _, _ = select.select(ends, [], [], 60)
                if not ready:
                    return
                for r in ready:
                    data = r.recv(65536)
                    if not data:
                        return
                    (upstream if r is self.connection else self.connection).sendall(data)
        finally:
            upstream.close()


class DualStackServer(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        # One socket for both families, whatever the host's default.
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: connect_proxy.py PORT")
    with DualStackServer(("::", int(sys.argv[1])), Handler) as server:
        print(f"listening on [::]:{sys.argv[1]}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
