"""Audit records as auditd writes them for one execve, for the tests of the auditd parser and
of the join of a process start with its working directory."""

from __future__ import annotations


def call(
    serial: int,
    pid: int,
    ppid: int,
    exe: str,
    args: list[str],
    ok: str = "yes",
    uid: int = 33,
    cwd: str | None = "/var/www/html",
    user: str | None = None,
    auid: int = 1001,
) -> list[str]:
    """The records auditd writes for one execve: SYSCALL, EXECVE, CWD, PATH, PROCTITLE.
    ``cwd`` None: no CWD record (an audit rule set that excludes them). ``user``: the name
    ``log_format = ENRICHED`` adds for the uid."""
    stamp = f"1772539200.{serial % 1000:03d}:{serial}"
    quoted = " ".join(f'a{index}="{arg}"' for index, arg in enumerate(args))
    title = "\x00".join(args).encode().hex().upper()
    comm = exe.rsplit("/", 1)[1][:15]
    syscall = (
        f"type=SYSCALL msg=audit({stamp}): arch=c000003e syscall=59 success={ok} exit=0"
        f" a0=55f1c2a3e4b0 a1=55f1c2a3e5d0 a2=55f1c2a3e6f0 a3=8 items=2 ppid={ppid} pid={pid}"
        f" auid={auid} uid={uid} gid=33 euid={uid} suid={uid} fsuid={uid} egid=33 sgid=33"
        f' fsgid=33 tty=(none) ses=4294967295 comm="{comm}" exe="{exe}" subj=unconfined'
        ' key="exec"'
    )
    if user is not None:
        syscall += f'\x1dARCH=x86_64 SYSCALL=execve AUID="unset" UID="{user}" GID="{user}"'
    return [
        syscall,
        f"type=EXECVE msg=audit({stamp}): argc={len(args)} {quoted}",
        *([f'type=CWD msg=audit({stamp}): cwd="{cwd}"'] if cwd is not None else []),
        f'type=PATH msg=audit({stamp}): item=0 name="{exe}" inode=1311 dev=fd:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL',
        f"type=PROCTITLE msg=audit({stamp}): proctitle={title}",
    ]
