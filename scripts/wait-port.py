"""Wait until something listens on 127.0.0.1:PORT (at most 20 s); exit 1 if nothing does."""

import socket
import sys
import time

port = int(sys.argv[1])
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            sys.exit(0)
    time.sleep(0.2)
print(f"nothing listens on 127.0.0.1:{port}", file=sys.stderr)
sys.exit(1)
