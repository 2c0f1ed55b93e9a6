"""A syslog receiver on loopback for the tests of alert channels: RFC 5424
messages over UDP and TCP (octet counting, RFC 6587)."""
import re
import socket
import threading

# RFC 5424: HEADER SP STRUCTURED-DATA [SP MSG].
RFC5424 = re.compile(
    rb"^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)) "
    rb"(?P<host>[!-~]{1,255}) (?P<app>[!-~]{1,48}) (?P<proc>[!-~]{1,128}) "
    rb"(?P<msgid>[!-~]{1,32}) (?P<sd>-|(?:\[[^\]]*\])+)(?: (?P<msg>.*))?$", re.S)


class SyslogReceiver:
    """UDP and TCP (octet counting, RFC 6587) on loopback; every message,
    as bytes, in order."""

    def __init__(self):
        self.messages = []
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(8)
        for target in (self.read_udp, self.accept_tcp):
            threading.Thread(target=target, daemon=True).start()

    def read_udp(self):
        while True:
            self.messages.append(self.udp.recv(65536))

    def accept_tcp(self):
        while True:
            conn, _ = self.tcp.accept()
            threading.Thread(target=self.read_tcp, args=(conn,), daemon=True).start()

    def read_tcp(self, conn):
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
            while b" " in data:
                length, rest = data.split(b" ", 1)
                if len(rest) < int(length):
                    break
                self.messages.append(rest[:int(length)])
                data = rest[int(length):]
