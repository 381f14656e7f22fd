"""Process starts held back until the working directory of their call is known.

The kernel writes one exec as records sharing a serial: SYSCALL, EXECVE (several for a long
argv), CWD, PATH..., PROCTITLE, EOE. The EXECVE record's event is the process start that
Sigma's ``process_creation`` rules match (auditd.py), but the directory (``CurrentDirectory``)
is on the CWD record that comes after it. A reader that passed each event on as its line
was read would have the rules match the start before its directory is known, so a reader
puts its events through this join: a process start waits, and every event read after it
waits behind it, in one queue, until its call's CWD record arrives (the directory is then
set on every EXECVE event of the call) or something says none is coming:

- another record of the same call that is neither EXECVE nor CWD (PATH, PROCTITLE, EOE: an
  audit rule set that excludes CWD records goes straight on to them);
- the queue reaching ``max_held`` events: a flood of EXECVE records without siblings (hostile
  input) costs a bounded queue, and the oldest start goes on without its directory;
- the end of the stream (``flush``: the end of a file or of a part of one in a scan, a
  collector stopping or a followed file rotated away);
- in a live collector, ``idle_secs`` without a record of the call (``expire``): a host that
  goes quiet after an EXECVE must not keep it, and the lines behind it, back for long.

Events leave in the order they were read, so a reader that saves a position once everything
before it was delivered (the file follower) never saves one past a held line. Nothing is
dropped: a start that waited in vain leaves without the directory.

A reader asks ``idle()`` first: with nothing held and nothing to hold (every line that is not
an audit process start, when none waits) it passes the event straight on.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from socpipe.core.event import Event

#: Events held at most (the waiting starts and the lines read after them). The records of
#: one call come within a few lines, a long command line in a few EXECVE records.
MAX_HELD_EVENTS: Final = 256
#: Seconds a live collector holds a start without a new record of its call; the kernel writes
#: a call's records at once, so a second of silence means its CWD record is not coming.
IDLE_SECS: Final = 1.0


class _Call:
    """The EXECVE events of one exec that wait for its CWD record."""

    def __init__(self, key: str, first: Event | None) -> None:
        self.key = key
        #: The call's SYSCALL record, handed on already: a reader that reads the held lines
        #: again starts there, to rebuild the start whole.
        self.first = first
        self.events: list[Event] = []
        #: When its last EXECVE record was read (a live collector's monotonic clock).
        self.seen = 0.0
        self.waiting = True


class CwdJoin:
    """One stream's process starts waiting for their directory, and the queue of events its
    reader holds behind them."""

    def __init__(self, max_held: int = MAX_HELD_EVENTS, idle_secs: float = IDLE_SECS) -> None:
        self.max_held = max_held
        self.idle_secs = idle_secs
        # Insertion-ordered: the call whose EXECVE record was read longest ago comes first.
        self._calls: dict[str, _Call] = {}
        self._queue: deque[tuple[Event, _Call | None]] = deque()
        # The start the parser has just made to wait, until its reader admits it.
        self._fresh: _Call | None = None
        self._fresh_event: Event | None = None

    # --- the parser's side: what the records of a call say --------------------------------

    def wait(self, key: str, event: Event, first: Event | None = None) -> None:
        """Hold ``event``, an EXECVE record's process start, for the CWD record of its call;
        ``first``: the call's SYSCALL record."""
        call = self._calls.pop(key, None)
        if call is None or len(call.events) >= self.max_held:
            # A call of more EXECVE records than the queue holds is no exec the kernel wrote:
            # the next ones wait on their own, so no list grows without bound.
            if call is not None:
                call.waiting = False
            call = _Call(key, first)
        self._calls[key] = call
        call.events.append(event)
        self._fresh = call
        self._fresh_event = event
        if len(self._calls) > self.max_held:
            self._give_up(next(iter(self._calls.values())))

    def sibling(self, key: str, record_type: str, event: Event) -> None:
        """A record of the call other than EXECVE: a CWD record gives its directory to the
        call's starts; any other record means no CWD record is coming."""
        call = self._calls.pop(key, None)
        if call is None:
            return
        call.waiting = False
        directory = event.get("process.working_directory")
        if record_type == "CWD" and directory is not None:
            for start in call.events:
                start["process.working_directory"] = directory

    # --- the reader's side: events in, events out in their order --------------------------

    def idle(self) -> bool:
        """Nothing held and nothing to hold: the reader passes its event straight on."""
        return self._fresh is None and not self._queue

    def admit(self, event: Event, now: float = 0.0) -> list[Event]:
        """Queue ``event`` (a line's event with every field its reader sets) behind those
        held, and return the events free to go, oldest first. ``now``: a live collector's
        monotonic clock, for ``expire``."""
        call = None
        if self._fresh is not None:
            if self._fresh_event is event:
                call = self._fresh
                call.seen = now
            self._fresh = None
            self._fresh_event = None
        self._queue.append((event, call))
        if len(self._queue) > self.max_held:
            # The oldest start gives up waiting: at least it leaves, the queue stays bounded.
            front = self._queue[0][1]
            if front is not None:
                self._give_up(front)
        return self._released()

    def expire(self, now: float) -> list[Event]:
        """Give up the calls without a record for ``idle_secs``; the events free to go."""
        calls = self._calls
        while calls:
            oldest = next(iter(calls.values()))
            if now - oldest.seen < self.idle_secs:
                break
            self._give_up(oldest)
        return self._released()

    def flush(self) -> list[Event]:
        """The stream ends: every held event, in order, the starts without a directory."""
        for call in list(self._calls.values()):
            call.waiting = False
        self._calls.clear()
        self._fresh = None
        self._fresh_event = None
        ready = [event for event, _call in self._queue]
        self._queue.clear()
        return ready

    def discard(self) -> None:
        """Forget what is held: the reader goes back to read those lines again."""
        self.flush()

    def held(self) -> list[Event]:
        """The events held, oldest first, each start after the first record of its call:
        what a reader must read again to make them again, whole."""
        found: list[Event] = []
        for event, call in self._queue:
            if call is not None and call.first is not None:
                found.append(call.first)
            found.append(event)
        return found

    def _give_up(self, call: _Call) -> None:
        call.waiting = False
        self._calls.pop(call.key, None)

    def _released(self) -> list[Event]:
        """The events at the front of the queue that no longer wait, taken off it."""
        queue = self._queue
        ready: list[Event] = []
        while queue:
            call = queue[0][1]
            if call is not None and call.waiting:
                break
            ready.append(queue.popleft()[0])
        return ready
