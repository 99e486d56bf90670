"""A tiny DNS server standing in for Docker's embedded DNS on Swarm: it answers
`tasks.<service>` with one A record per running task, and the drills change that set as
tasks come and go (a node dies, a task is rescheduled).

    with TaskDns({"tasks.app": ["127.0.0.1", "127.0.0.2"]}) as dns:
        dns.nameserver            # "127.0.0.1:<port>", for haproxy's `resolvers` section
        dns.set_tasks("tasks.app", ["127.0.0.2"])

UDP only, like the lookups HAProxy's resolvers make. The server socket is created by the
calling thread, so a drill inside a network namespace gets a server inside it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from dnslib import QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from .ports import free_port

# Docker's embedded DNS answers with a TTL of 600; HAProxy's resolvers re-ask on their own
# schedule (`timeout resolve`) and ignore it, so this only matters to other clients.
TTL_S = 600


class _TaskRecords(BaseResolver):
    def __init__(self, records: Mapping[str, Sequence[str]]):
        self._lock = threading.Lock()
        self._records = {self._key(name): list(addresses) for name, addresses in records.items()}
        self.queries = 0

    @staticmethod
    def _key(name: str) -> str:
        return name.rstrip(".").lower()

    def set(self, name: str, addresses: Sequence[str]) -> None:
        with self._lock:
            self._records[self._key(name)] = list(addresses)

    def resolve(self, request, handler):
        reply = request.reply()
        name = self._key(str(request.q.qname))
        with self._lock:
            self.queries += 1
            addresses = self._records.get(name)
        if addresses is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype in (QTYPE.A, QTYPE.ANY):
            for address in addresses:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=TTL_S))
        return reply


class TaskDns:
    """The server, on `host`:<free port>, answering from a mutable name -> addresses map."""

    def __init__(self, records: Mapping[str, Sequence[str]], host: str = "127.0.0.1"):
        self.host = host
        self.port = free_port()
        self.records = _TaskRecords(records)
        self._server = DNSServer(self.records, address=host, port=self.port, logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data"))

    @property
    def nameserver(self) -> str:
        return f"{self.host}:{self.port}"

    def set_tasks(self, name: str, addresses: Sequence[str]) -> None:
        self.records.set(name, addresses)

    def __enter__(self) -> TaskDns:
        self._server.start_thread()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop()
        self._server.server.server_close()
