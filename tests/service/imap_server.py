"""A small IMAP4rev1 server for the tests: LOGIN, SELECT, UID SEARCH/FETCH/STORE, LOGOUT.

It speaks the protocol over a real socket on an ephemeral port, so the mailbox poller runs
unchanged through imaplib; messages live in memory with their \\Seen flag.
"""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass, field


@dataclass
class Mailbox:
    user: str = "support@shop.example"
    password: str = "s3cret"
    messages: dict[int, bytes] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)
    next_uid: int = 1
    logins: int = 0

    def add(self, raw: bytes) -> int:
        uid = self.next_uid
        self.messages[uid] = raw
        self.next_uid += 1
        return uid


def _unquote(word: str) -> str:
    return word[1:-1].replace('\\"', '"').replace("\\\\", "\\") if word.startswith('"') else word


class Handler(socketserver.StreamRequestHandler):
    mailbox: Mailbox

    def send(self, line: str | bytes) -> None:
        self.wfile.write(line if isinstance(line, bytes) else line.encode() + b"\r\n")

    def handle(self) -> None:
        box = self.server.mailbox  # type: ignore[attr-defined]
        self.send("* OK IMAP4rev1 test server ready")
        authed = False
        while True:
            line = self.rfile.readline()
            if not line:
                return
            tag, _, rest = line.decode().rstrip("\r\n").partition(" ")
            command, _, args = rest.partition(" ")
            command = command.upper()
            if command == "CAPABILITY":
                self.send("* CAPABILITY IMAP4rev1")
                self.send(f"{tag} OK CAPABILITY completed")
            elif command == "LOGIN":
                user, password = (_unquote(w) for w in args.split(" ", 1))
                if (user, password) == (box.user, box.password):
                    authed = True
                    box.logins += 1
                    self.send(f"{tag} OK LOGIN completed")
                else:
                    self.send(f"{tag} NO [AUTHENTICATIONFAILED] invalid credentials")
            elif command == "LOGOUT":
                self.send("* BYE logging out")
                self.send(f"{tag} OK LOGOUT completed")
                return
            elif not authed:
                self.send(f"{tag} BAD log in first")
            elif command in ("SELECT", "EXAMINE"):
                if _unquote(args).upper() != "INBOX":
                    self.send(f"{tag} NO no such mailbox")
                    continue
                self.send(f"* {len(box.messages)} EXISTS")
                self.send("* FLAGS (\\Seen)")
                self.send(f"{tag} OK [READ-WRITE] SELECT completed")
            elif command == "UID":
                self.handle_uid(tag, args, box)
            elif command == "NOOP":
                self.send(f"{tag} OK NOOP completed")
            else:
                self.send(f"{tag} BAD unknown command")

    def handle_uid(self, tag: str, args: str, box: Mailbox) -> None:
        sub, _, rest = args.partition(" ")
        sub = sub.upper()
        if sub == "SEARCH":
            uids = [u for u in sorted(box.messages) if u not in box.seen]
            self.send("* SEARCH" + "".join(f" {u}" for u in uids))
            self.send(f"{tag} OK SEARCH completed")
        elif sub == "FETCH":
            uid = int(rest.split(" ", 1)[0])
            raw = box.messages.get(uid)
            if raw is not None:
                seq = sorted(box.messages).index(uid) + 1
                self.send(f"* {seq} FETCH (UID {uid} BODY[] {{{len(raw)}}}".encode() + b"\r\n")
                self.send(raw + b")\r\n")
            self.send(f"{tag} OK FETCH completed")
        elif sub == "STORE":
            uid = int(rest.split(" ", 1)[0])
            if "\\Seen" in rest:
                box.seen.add(uid)
            self.send(f"{tag} OK STORE completed")
        else:
            self.send(f"{tag} BAD unknown UID command")


class IMAPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mailbox: Mailbox):
        super().__init__(("127.0.0.1", 0), Handler)
        self.mailbox = mailbox

    @property
    def url(self) -> str:
        user = self.mailbox.user.replace("@", "%40")
        return f"imap://{user}:{self.mailbox.password}@127.0.0.1:{self.server_address[1]}/INBOX"

    def start(self) -> IMAPServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self
