"""How a digest reaches its owner: by SMTP, by a webhook (Slack-compatible JSON), or as an
``.eml`` file in a folder.

Each channel delivers one owner's digest at a time and raises `DeliveryError`
with a message for people when it cannot; nothing here retries or records:
`lifecycle_cli.jobs.notify` decides what to send and records what was delivered.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import re
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any

from ..files import write_atomic
from ..version import __version__
from .digest import Digest

SMTP, WEBHOOK, EML = "smtp", "webhook", "eml"
SMTPS_PORT = 465  # SMTP over TLS from the first byte (the others: STARTTLS when offered)


class DeliveryError(Exception):
    """A digest that could not be delivered to one owner: the message says why."""


@dataclass(frozen=True)
class SmtpSettings:
    """``--smtp host:port``, ``--from``, ``--smtp-tls`` and the login from the environment."""

    host: str
    port: int
    sender: str
    tls: bool | None = None  # None: STARTTLS when offered; True: required; False: never
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def email_message(digest: Digest, sender: str, to: list[str], sent_at: dt.datetime,
                  footer: str | None = None) -> EmailMessage:
    """The digest as an email: plain text with a simple HTML alternative."""
    owner = " ".join(digest.owner.split())  # no line break can reach a header
    message = EmailMessage()
    message["Subject"] = digest.subject
    message["From"] = sender
    message["To"] = ", ".join(formataddr((owner if i == 0 else "", address))
                              for i, address in enumerate(to))
    message["Date"] = format_datetime(sent_at)
    domain = sender.rpartition("@")[2].strip(" >") or None
    message["Message-ID"] = make_msgid("lifecycle", domain=domain)
    message["X-Lifecycle-As-Of"] = digest.as_of.isoformat()
    message["X-Lifecycle-Owner"] = owner
    message.set_content(digest.text(footer))
    message.add_alternative(digest.html(footer), subtype="html")
    return message


class SmtpChannel:
    """One connection to the mail server for the whole run, opened at the first digest.

    A server that cannot be reached, refuses STARTTLS or the login fails every digest with
    the same message (it is not tried again for each owner); a refused recipient fails
    that owner's digest only."""

    name = SMTP

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.connection: smtplib.SMTP | None = None
        self.broken: str | None = None
        self.refused: dict[str, str] = {}  # the last message's recipients the server refused

    def send(self, message: EmailMessage) -> None:
        if self.broken is not None:
            raise DeliveryError(self.broken)
        connection = self._connect()
        self.refused = {}
        try:
            refused = connection.send_message(message)
        except smtplib.SMTPRecipientsRefused as err:
            raise DeliveryError("the mail server refused " + _refused(err.recipients)) from None
        except smtplib.SMTPSenderRefused as err:
            self.broken = (f"the mail server refused the sender {err.sender}: "
                           f"{_reply(err.smtp_code, err.smtp_error)} (check --from)")
            raise DeliveryError(self.broken) from None
        except smtplib.SMTPResponseException as err:
            raise DeliveryError(f"the mail server refused the message: "
                                f"{_reply(err.smtp_code, err.smtp_error)}") from None
        except (smtplib.SMTPException, OSError) as err:
            self.connection = None  # a dropped connection: the next digest connects again
            raise DeliveryError(f"the connection to {self.settings.where} broke: "
                                f"{_os_text(err)}") from None
        self.refused = {a: _reply(code, text) for a, (code, text) in refused.items()}

    def _connect(self) -> smtplib.SMTP:
        if self.connection is not None:
            return self.connection
        s = self.settings
        try:
            if s.port == SMTPS_PORT and s.tls is not False:
                connection: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=ssl.create_default_context())
            else:
                connection = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                connection.ehlo()
                if s.tls is not False and connection.has_extn("starttls"):
                    connection.starttls(context=ssl.create_default_context())
                    connection.ehlo()
                elif s.tls:
                    connection.quit()
                    raise DeliveryError(f"the mail server {s.where} does not offer STARTTLS "
                                        "(--smtp-tls requires it; --no-smtp-tls sends without)")
            if s.user is not None:
                if not connection.has_extn("auth"):
                    connection.quit()
                    raise DeliveryError(
                        f"the mail server {s.where} offers no login (AUTH) here; servers "
                        "often offer it only over TLS: allow STARTTLS, or unset "
                        "LIFECYCLE_SMTP_USER")
                connection.login(s.user, s.password or "")
        except DeliveryError as err:
            self.broken = str(err)
            raise
        except smtplib.SMTPAuthenticationError as err:
            self.broken = (f"the mail server {s.where} refused the login of {s.user} "
                           f"(LIFECYCLE_SMTP_USER): {_reply(err.smtp_code, err.smtp_error)}")
        except ssl.SSLError as err:
            self.broken = (f"TLS with the mail server {s.where} failed: {err.reason or err} "
                           "(a certificate this machine does not trust? --no-smtp-tls sends "
                           "without TLS)")
        except smtplib.SMTPResponseException as err:
            self.broken = (f"the mail server {s.where} refused us: "
                           f"{_reply(err.smtp_code, err.smtp_error)}")
        except (smtplib.SMTPException, OSError) as err:
            self.broken = f"cannot connect to the mail server {s.where}: {_os_text(err)}"
        else:
            self.connection = connection
            return connection
        raise DeliveryError(self.broken)

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (smtplib.SMTPException, OSError):
                self.connection.close()
            self.connection = None


class WebhookChannel:
    """One POST per owner with a Slack-compatible JSON body; anything but a 2xx answer fails
    that owner's digest."""

    name = WEBHOOK

    def __init__(self, url: str | None, timeout: float = 30.0) -> None:
        self.url = url  # the default: an owner's own webhook (--addresses) comes first
        self.timeout = timeout

    def post(self, url: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            url, data=json.dumps(body, ensure_ascii=False).encode("utf-8"), method="POST",
            headers={"Content-Type": "application/json",
                     "User-Agent": f"lifecycle/{__version__}"})
        where = redact(url)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, reason = response.status, response.reason
                response.read()
        except urllib.error.HTTPError as err:
            answer = err.read()[:200].decode("utf-8", "replace").strip()
            raise DeliveryError(f"the webhook {where} answered HTTP {err.code} {err.reason}"
                                + (f": {answer}" if answer else "")) from None
        except urllib.error.URLError as err:
            raise DeliveryError(f"cannot reach the webhook {where}: "
                                f"{_os_text(err.reason)}") from None
        except (OSError, http.client.HTTPException) as err:
            raise DeliveryError(f"the webhook {where} failed: {_os_text(err)}") from None
        if not 200 <= status < 300:
            raise DeliveryError(f"the webhook {where} answered HTTP {status} {reason}")


class EmlChannel:
    """One ``.eml`` file per owner in a folder (``AS_OF-OWNER.eml``), written whole or not at
    all: for a mail client, an archive, or a relay that picks up files."""

    name = EML

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, owner: str, as_of: dt.date) -> Path:
        slug = re.sub(r"[^\w.-]+", "-", owner.strip()).strip("-.") or "owner"
        return self.folder / f"{as_of.isoformat()}-{slug}.eml"

    def write(self, message: EmailMessage, owner: str, as_of: dt.date) -> Path:
        target = self.path(owner, as_of)
        try:
            write_atomic(target, bytes(message))
        except OSError as err:
            raise DeliveryError(f"cannot write {target}: {err.strerror or err}") from None
        return target


def redact(url: str) -> str:
    """A webhook's URL without its secret (the path of a Slack webhook is its key):
    ``https://hooks.slack.com/...``."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/..." if parts.path not in ("", "/") else \
        f"{parts.scheme}://{host}{port}/"


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {words}".strip()


def _refused(recipients: dict[str, tuple[int, bytes]]) -> str:
    return ", ".join(f"{address} ({_reply(code, text)})"
                     for address, (code, text) in recipients.items())


def _os_text(err: object) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__
