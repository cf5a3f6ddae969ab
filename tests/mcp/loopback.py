"""Serving a test fixture on loopback without a port race: with port 0 the
fixture binds a free port itself and says which on its first line of
output (`PORT <n>`), so no other process can take the port between its
choice and the bind."""
import socket
import sys

import uvicorn


def listen(port: int) -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    bound = sock.getsockname()[1]
    print(f"PORT {bound}", flush=True)
    return sock, bound


def serve(app, sock: socket.socket) -> None:
    config = uvicorn.Config(app, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])
