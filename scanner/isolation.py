"""Running risky native code in a child process, so that a crash costs one file, not the scan.

Parsing EVTX runs Rust code over bytes an attacker may have shaped; the scan also goes
through orjson, RE2 and the mypyc-compiled modules. A bug in any of them can end the process
with a signal (one scan in 200 died with SIGSEGV and never again on the same input): Python
cannot catch that. A forked child does the work and sends its results back through a pipe;
if it dies, the parent says which file it was reading, with the signal, keeps what the
child had sent, and goes on.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from collections.abc import Callable, Generator, Iterator
from typing import Any, TypeVar

from socpipe.core.errors import SocpipeError

T = TypeVar("T")
#: Items sent per message from a streaming child: a message costs more than pickling one
#: item, and a crash loses the items of the batch not yet sent (an EVTX reader's are then
#: reported as missing records, by number).
BATCH = 32

_DONE = "done"
_FAILED = "failed"


class ChildCrashed(SocpipeError):
    """The child process ended without finishing (a native crash, or killed)."""

    def __init__(self, what: str, exitcode: int | None, sent: int) -> None:
        self.exitcode = exitcode
        self.sent = sent
        after = f" after {sent:,} records" if sent else ""
        super().__init__(f"the reader was {describe_exit(exitcode)}{after}", what)


def describe_exit(exitcode: int | None) -> str:
    """``killed by signal 11 (SIGSEGV)`` or ``ended with status 3``."""
    if exitcode is None:
        return "lost without an exit status"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "unknown signal"
        return f"killed by signal {-exitcode} ({name})"
    return f"ended with status {exitcode}"


# Forked, so the child has the parsers (and compiled rules) without importing anything.
_FORK = multiprocessing.get_context("fork")


def stream_in_child(what: str, produce: Callable[..., Iterator[T]], *arguments: Any) -> Iterator[T]:
    """The items ``produce(*arguments)`` yields, made in a child process. If the child
    crashes, the items it sent come first, then ``ChildCrashed`` naming ``what``. An
    exception in the child is raised here again (as its type when it pickles)."""
    receiver, sender = _FORK.Pipe(duplex=False)
    child = _FORK.Process(target=_stream, args=(sender, produce, arguments), daemon=True)
    child.start()
    sender.close()
    try:
        yield from _receive(what, receiver, child)
    finally:
        receiver.close()
        if child.is_alive():  # the consumer stopped early (Ctrl-C, an error)
            child.kill()
        child.join()


class ChildStreams:
    """``stream_in_child`` with one child kept from call to call: forking a process that
    holds thousands of compiled rules cost more than parsing a small EVTX file (277 sample
    files: 1.9 s through a child each, 0.13 s parsed here, 0.25 s through one child). The
    function and its arguments are pickled to the child (a module-level function pickles
    by name). A child that crashed, or whose stream was left unfinished, is replaced at the
    next call; ``close`` ends the last one."""

    def __init__(self) -> None:
        self._child: Any = None
        self._requests: Any = None
        self._results: Any = None
        #: False while a stream is being read (a child mid-stream is killed, not asked).
        self._idle = True

    def __call__(
        self, what: str, produce: Callable[..., Iterator[T]], *arguments: Any
    ) -> Generator[T, None, None]:
        child = self._start()
        self._requests.send((produce, arguments))
        self._idle = False
        try:
            yield from _receive(what, self._results, child, self._stream_ended)
        finally:
            if not self._idle:  # crashed, failed or abandoned mid-stream: never reused
                self.close()
                self._idle = True

    def _stream_ended(self) -> None:
        """The child finished the stream (its last items, or the exception it met)."""
        self._idle = True

    def _start(self) -> Any:
        if self._child is None:
            requests, self._requests = _FORK.Pipe(duplex=False)
            self._results, results = _FORK.Pipe(duplex=False)
            self._child = _FORK.Process(target=_serve, args=(requests, results), daemon=True)
            self._child.start()
            requests.close()
            results.close()
        return self._child

    def close(self) -> None:
        """End the child: told to stop when it is idle, killed when it is mid-stream."""
        child, self._child = self._child, None
        if child is None:
            return
        if self._idle:
            with contextlib.suppress(OSError):  # it is gone already
                self._requests.send(None)
        else:
            child.kill()
        self._requests.close()
        self._results.close()
        child.join()


def _receive(
    what: str, receiver: Any, child: Any, ended: Callable[[], None] = lambda: None
) -> Iterator[Any]:
    """The items of one stream, until its end (then ``ended`` is called, before the
    exception the child met is raised here); ``ChildCrashed`` if the child dies first."""
    sent = 0
    while True:
        try:
            kind, payload = receiver.recv()
        except EOFError:
            child.join()
            raise ChildCrashed(what, child.exitcode, sent) from None
        if kind in (_DONE, _FAILED):
            ended()
        if kind == _DONE:
            return
        if kind == _FAILED:
            raise payload
        sent += len(payload)
        yield from payload


def _serve(requests: Any, results: Any) -> None:
    """The long-lived child of ``ChildStreams``: one stream per request, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the scan on Ctrl-C
    try:
        while (request := requests.recv()) is not None:
            produce, arguments = request
            _send_items(results, produce, arguments)
    except EOFError:
        pass  # the parent is gone
    finally:
        results.close()


def _stream(sender: Any, produce: Callable[..., Iterator[Any]], arguments: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the scan on Ctrl-C
    try:
        _send_items(sender, produce, arguments)
    finally:
        sender.close()


def _send_items(
    sender: Any, produce: Callable[..., Iterator[Any]], arguments: tuple[Any, ...]
) -> None:
    try:
        batch: list[Any] = []
        for item in produce(*arguments):
            batch.append(item)
            if len(batch) >= BATCH:
                sender.send(("items", batch))
                batch = []
        if batch:
            sender.send(("items", batch))
        sender.send((_DONE, None))
    except Exception as error:  # handed to the parent, which decides
        sender.send((_FAILED, error))


def call_in_child(what: str, function: Callable[..., T], *arguments: Any) -> T:
    """``function(*arguments)`` computed in a child process; ``ChildCrashed`` if it dies."""
    results = list(stream_in_child(what, _once, function, arguments))
    return results[0]  # type: ignore[no-any-return]


def _once(function: Callable[..., Any], arguments: tuple[Any, ...]) -> Iterator[Any]:
    yield function(*arguments)
