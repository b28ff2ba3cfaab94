"""A WebSocket by hand, byte by byte: the handshake and one frame of each kind, printed as they cross the wire."""

# The primer (PRIMER.md) runs it against a chapter's server: .venv/bin/python 00_protocol/wire.py
# Only the standard library: a socket, an HTTP request written by hand, frames packed with struct.

import argparse
import base64
import hashlib
import json
import socket
import struct
import urllib.request
from urllib.parse import urlsplit

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example key: any 16 random bytes in base64 will do
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # the constant of RFC 6455 §1.3
MASK = bytes([0x37, 0xFA, 0x21, 0x3D])  # RFC 6455's example mask; a real client draws 4 random bytes per frame
OPCODES = {0x1: "text", 0x2: "binary", 0x8: "close", 0x9: "ping", 0xA: "pong"}


def frame(opcode: int, payload: bytes) -> bytes:
    """A client frame: FIN and the opcode, then MASK and the length, the mask key, the masked payload."""
    assert len(payload) < 126, "longer payloads take 2 or 8 more length bytes"
    masked = bytes(byte ^ MASK[i % 4] for i, byte in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + MASK + masked


def read_frame(sock: socket.socket) -> tuple[int, bytes, bytes]:
    """The next server frame: (opcode, payload, its bytes on the wire). A server never masks."""
    head = read_exactly(sock, 2)
    length = head[1] & 0x7F
    if length == 126:
        head += read_exactly(sock, 2)
        (length,) = struct.unpack("!H", head[2:])
    elif length == 127:
        head += read_exactly(sock, 8)
        (length,) = struct.unpack("!Q", head[2:])
    payload = read_exactly(sock, length)
    return head[0] & 0x0F, payload, head + payload


def read_exactly(sock: socket.socket, size: int) -> bytes:
    """``size`` bytes from the socket, however many reads that takes."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise SystemExit("The server closed the connection.")
        data += chunk
    return data


def hexdump(data: bytes, limit: int = 24) -> str:
    """The first ``limit`` bytes in hex."""
    shown = " ".join(f"{byte:02x}" for byte in data[:limit])
    return shown + (" …" if len(data) > limit else "")


def show(arrow: str, opcode: int, wire: bytes, payload: bytes) -> None:
    """One frame: its kind and bytes, then its length and payload (a close frame's: its code)."""
    text = payload.decode(errors="replace")
    if opcode == 0x8:
        text = f"code {struct.unpack('!H', payload[:2])[0]}" if payload else "no code"
    shown = text if len(text) <= 40 else text[:39] + "…"
    print(f"{arrow} {OPCODES[opcode]:<5} {hexdump(wire)}")
    print(f"        {len(wire)} bytes; payload: {shown}")


def main() -> None:
    """Get a token, open a WebSocket by hand, exchange one frame of each kind, and print every byte."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8001", help="a chapter's server (default: chapter 1's)")
    parser.add_argument("--room", default="lobby")
    args = parser.parse_args()
    server = urlsplit(args.url)
    with urllib.request.urlopen(f"{args.url}/api/token?user=wire", timeout=5) as response:  # SPEC.md §2.3
        token = json.load(response)["token"]

    # 1. The handshake: an HTTP/1.1 GET that asks to switch protocols.
    request = (
        f"GET /ws/chat/{args.room}?token={token} HTTP/1.1\r\n"
        f"Host: {server.netloc}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n"
    )
    sock = socket.create_connection((server.hostname, server.port or 80), timeout=5)
    sock.sendall(request.encode())
    for line in request.replace(token, token[:3] + "…").splitlines():
        print(f">> {line}")
    answer = b""
    while not answer.endswith(b"\r\n\r\n"):
        answer += read_exactly(sock, 1)
    for line in answer.decode().splitlines():
        print(f"<< {line}")
    accept = base64.b64encode(hashlib.sha1((KEY + GUID).encode()).digest()).decode()
    print(f"base64(sha1(key + {GUID})) = {accept}: {'as the server says' if accept in answer.decode() else '?'}")
    print()

    # 2. Frames: the server speaks first (the welcome, SPEC.md §6), then one frame of each kind from us.
    opcode, payload, wire = read_frame(sock)
    show("<<", opcode, wire, payload)
    answers = {0x1: 0x1, 0x9: 0xA, 0x8: 0x8}  # what answers a text ping, a ping, a close
    for opcode, payload in [(0x1, b'{"type":"ping"}'), (0x9, b"hi"), (0x8, struct.pack("!H", 1000))]:
        sent = frame(opcode, payload)
        sock.sendall(sent)
        show(">>", opcode, sent, payload)
        while True:  # until its answer: a frame from someone else in the room, or a server ping, may come first
            answer_opcode, answer_payload, wire = read_frame(sock)
            show("<<", answer_opcode, wire, answer_payload)
            if answer_opcode == answers[opcode] and (opcode != 0x1 or answer_payload == b'{"type":"pong"}'):
                break
    sock.close()


if __name__ == "__main__":
    main()
