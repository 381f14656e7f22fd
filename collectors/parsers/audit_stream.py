"""What the auditd parser remembers between the records of one stream of audit records.

The kernel writes one audited system call as several records sharing a serial number:
SYSCALL first (executable, pids, user, outcome), then EXECVE (the arguments), CWD, PATH and
PROCTITLE. A parser sees one line at a time, so to describe a process start on its EXECVE
record it keeps the last SYSCALL records seen: records of different calls interleave on a
multi-CPU host, so a few are kept, oldest dropped first. Process starts are remembered
by pid, so the parent executable of a later start is known when the parent's own start was
seen. Both tables are bounded: memory stays flat on a stream that runs for months. The
directory of a start, on the CWD record after it, is joined by the stream's readers, who
hold the start back until it is known (``join``, see audit_join).

One stream is one file in ``socpipe scan`` and one collector in ``socpipe collect``; keys
include the host name, so a syslog collector receiving many hosts keeps them apart.
"""

from __future__ import annotations

from typing import Any, Final

from socpipe.collectors.parsers.audit_join import CwdJoin

#: SYSCALL records kept for the EXECVE records of their call; interleaving on a busy host is a
#: few records deep.
MAX_PENDING_SYSCALLS: Final = 64
#: Process starts remembered for their children (a few hundred bytes each).
MAX_PROCESSES: Final = 4096


class AuditStream:
    def __init__(
        self, max_pending: int = MAX_PENDING_SYSCALLS, max_processes: int = MAX_PROCESSES
    ) -> None:
        self.max_pending = max_pending
        self.max_processes = max_processes
        # Insertion-ordered dicts: the first key is the oldest, dropped when full.
        self._syscalls: dict[str, dict[str, Any]] = {}
        self._processes: dict[str, tuple[str, str]] = {}
        self.join = CwdJoin()

    def remember_syscall(self, key: str, event: dict[str, Any]) -> None:
        """Keep a SYSCALL record's event for the EXECVE records of the same call."""
        syscalls = self._syscalls
        syscalls[key] = event
        if len(syscalls) > self.max_pending:
            del syscalls[next(iter(syscalls))]

    def syscall(self, key: str) -> dict[str, Any] | None:
        """The SYSCALL record's event of this call (None if not seen or dropped). It is kept:
        a long command line comes in several EXECVE records, each needing it."""
        return self._syscalls.get(key)

    def remember_process(self, key: str, executable: str, command_line: str) -> None:
        processes = self._processes
        # Re-inserting moves a reused pid to the young end.
        processes.pop(key, None)
        processes[key] = (executable, command_line)
        if len(processes) > self.max_processes:
            del processes[next(iter(processes))]

    def process(self, key: str) -> tuple[str, str] | None:
        """(executable, command line) of the last start seen with this host and pid."""
        return self._processes.get(key)
