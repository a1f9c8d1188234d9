#!/usr/bin/env python3
"""A local SMTP sink for bench/run.sh: accepts every message, keeps none, counts them.

    python3 bench/smtp_sink.py PORT COUNT_FILE [URL_FILE]

Speaks just enough SMTP for lettre without TLS or authentication: greeting 220, EHLO/HELO 250,
MAIL/RCPT/RSET/NOOP 250, DATA 354 then everything up to a lone "." 250, QUIT 221, anything
else 502. The number of messages received is written to COUNT_FILE every second and on
SIGTERM/SIGINT (written to a temporary file and renamed, so a reader never sees half a number).
With URL_FILE, the path of every confirmation link found in a message ("/confirm/TOKEN",
from the decoded text parts) is appended to it, one a line, for the confirmation benchmark.
Standard library only.
"""

import asyncio
import email
import email.policy
import os
import re
import signal
import sys

CONFIRM = re.compile(r"/confirm/([A-Za-z0-9_-]{16,})")


class Sink:
    def __init__(self, count_file, url_file):
        self.count = 0
        self.count_file = count_file
        self.urls = open(url_file, "a", buffering=1) if url_file else None
        self.seen = set()

    def write_count(self):
        tmp = self.count_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{self.count}\n")
        os.replace(tmp, self.count_file)

    def received(self, data):
        self.count += 1
        if self.urls is None:
            return
        tokens = []
        try:
            message = email.message_from_bytes(data, policy=email.policy.default)
            for part in message.walk():
                if part.get_content_maintype() == "text":
                    tokens += CONFIRM.findall(part.get_content())
        except Exception:  # an undecodable message: fall back to the raw bytes
            tokens = CONFIRM.findall(data.decode("utf-8", "replace"))
        for token in dict.fromkeys(tokens):
            if token not in self.seen:
                self.seen.add(token)
                self.urls.write(f"/confirm/{token}\n")

    async def session(self, reader, writer):
        def send(*lines):
            writer.write("".join(line + "\r\n" for line in lines).encode())

        try:
            send("220 bench-sink ESMTP")
            await writer.drain()
            while True:
                line = await reader.readline()
                if not line:
                    break
                verb = line[:4].upper()
                if verb == b"EHLO":
                    send("250-bench-sink", "250-8BITMIME", "250-SMTPUTF8", "250 SIZE 33554432")
                elif verb == b"HELO":
                    send("250 bench-sink")
                elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                    send("250 OK")
                elif verb == b"DATA":
                    send("354 end with <CRLF>.<CRLF>")
                    await writer.drain()
                    chunks = []
                    while True:
                        body = await reader.readline()
                        if not body:
                            return
                        if body in (b".\r\n", b".\n"):
                            break
                        if body.startswith(b".."):
                            body = body[1:]
                        chunks.append(body)
                    self.received(b"".join(chunks))
                    send("250 OK queued")
                elif verb == b"QUIT":
                    send("221 bye")
                    await writer.drain()
                    break
                else:
                    send("502 command not implemented")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def main():
    port, count_file = int(sys.argv[1]), sys.argv[2]
    sink = Sink(count_file, sys.argv[3] if len(sys.argv) > 3 else None)
    sink.write_count()
    server = await asyncio.start_server(sink.session, "127.0.0.1", port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=1)
            except asyncio.TimeoutError:
                pass
            sink.write_count()
    if sink.urls:
        sink.urls.close()


if __name__ == "__main__":
    asyncio.run(main())
