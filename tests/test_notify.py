"""`lifecycle notify`: each owner's digest, delivered to a real SMTP server (aiosmtpd), a real
HTTP webhook (http.server) and .eml files, all on this machine, at most once per owner,
channel and as-of date, recorded in a state made by real `lifecycle run --state` calls on
the bundled sample data."""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cli_util import ROOT, lifecycle, snapshot
from webhook_util import json_webhook

from lifecycle_cli.state.view import StateView

SAMPLE = ["--customers", ROOT / "sample_data" / "customers.csv",
          "--usage", ROOT / "sample_data" / "usage.csv", "--rules", ROOT / "rules" / "default.yaml"]
OWNERS = ROOT / "sample_data" / "owners.csv"
DAYS = ("2026-10-31", "2026-11-01")
LATEST = DAYS[-1]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state of two nightly runs on the sample data, made once; tests copy it."""
    state = tmp_path_factory.mktemp("made") / "state"
    for day in DAYS:
        result = lifecycle("run", *SAMPLE, "--as-of", day, "--state", state, "--dry-run",
                           "--no-dry-run", "--out", state.parent / f"out-{day}", "--quiet")
        assert result.returncode == 0, result.stderr
    return state


@pytest.fixture
def state(made: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "state"
    shutil.copytree(made, copy)
    return copy


def due_owners(state: Path, as_of: str = LATEST) -> set[str]:
    """The oracle: owners with a CTA or an open task due on or before the date (none of the
    sample's CTAs is new on its second date), from `lifecycle ctas --stdout`."""
    listed = lifecycle("ctas", "--state", state, "--as-of", as_of, "--stdout")
    rows = pl.read_csv(listed.stdout.encode(), infer_schema=False)
    return set(rows.filter(pl.col("due_on") <= as_of)["owner"].drop_nulls().to_list())


def recorded(state: Path) -> pl.DataFrame:
    return StateView.open(state).notifications()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Inbox:
    """An aiosmtpd handler: keeps what it accepts, refuses the recipients it is told to."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage, bool]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message, bool(session.authenticated)))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpt, m, _ in self.messages if address in rcpt]


def start_smtp(inbox: Inbox, **kwargs: Any) -> tuple[Controller, str]:
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return controller, f"127.0.0.1:{port}"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, str]]:
    """A plain SMTP server on localhost (no TLS, no login)."""
    inbox = Inbox()
    controller, where = start_smtp(inbox)
    try:
        yield inbox, where
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    key, "-out", cert, "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


def test_smtp_sends_each_owner_their_digest_once(state: Path, smtp: tuple[Inbox, str]
                                                 ) -> None:
    inbox, where = smtp
    files_before = snapshot(state)
    result = lifecycle("notify", "--state", state, "--addresses", OWNERS, "--smtp", where,
                       "--from", "CS Ops <cs-ops@example.com>")
    assert result.returncode == 0, result.stderr
    owners = due_owners(state)
    assert len(owners) >= 10
    assert len(inbox.messages) == len(owners)
    assert f"notify for {LATEST} (smtp): {len(owners)} sent" in result.stderr

    [ivan] = inbox.to("ivan.novak@example.com")
    assert ivan["From"] == "CS Ops <cs-ops@example.com>"
    assert ivan["To"] == "Ivan Novak <ivan.novak@example.com>"
    assert ivan["Subject"] == f"Your CTAs for {LATEST}: 0 past due, 2 due today, 0 new"
    assert ivan.get_content_type() == "multipart/alternative"
    text = ivan.get_body(("plain",)).get_content()
    assert "DUE TODAY (2)" in text
    assert "* Welcome and kickoff: O'Brien Systems 33 LLC (C0000033)" in text
    assert "1. Send the welcome pack and admin invites (due 2026-11-01, today)" in text
    html = ivan.get_body(("html",)).get_content()
    assert "O&#x27;Brien Systems 33 LLC" in html and "<h3>Due today (2)</h3>" in html
    # the team inbox of the rules' default owner gets its digest, lead in copy
    [ops] = [m for rcpt, m, _ in inbox.messages if "cs-ops@example.com" in rcpt]
    assert "cs-lead@example.com" in ops["To"]

    rows = recorded(state)
    assert sorted(rows["owner"].to_list()) == sorted(owners)
    assert set(rows["channel"]) == {"smtp"} and set(rows["as_of"].cast(pl.String)) == {LATEST}
    ivan_row = rows.filter(pl.col("owner") == "Ivan Novak").row(0, named=True)
    assert ivan_row["address"] == "ivan.novak@example.com"
    assert (ivan_row["ctas"], ivan_row["due_today"], ivan_row["tasks"]) == (2, 2, 6)

    # the state's other tables are untouched: the same files, the index names them still
    files_after = snapshot(state)
    changed = {name for name in files_before.keys() | files_after.keys()
               if files_before.get(name) != files_after.get(name)}
    assert {name.split("/")[0] for name in changed} == {"notifications", "state.json"}
    index_before = json.loads(files_before["state.json"])
    index_after = json.loads(files_after["state.json"])
    assert index_after["days"][LATEST].pop("notifications").startswith("notifications/")
    assert index_after == index_before

    again = lifecycle("notify", "--state", state, "--addresses", OWNERS, "--smtp", where)
    assert again.returncode == 0, again.stderr
    assert len(inbox.messages) == len(owners)  # nothing twice
    assert f"{len(owners)} already sent" in again.stderr
    assert recorded(state).height == len(owners)

    resent = lifecycle("notify", "--state", state, "--addresses", OWNERS, "--smtp", where,
                       "--owner", "ivan novak", "--resend")
    assert resent.returncode == 0, resent.stderr
    assert len(inbox.to("ivan.novak@example.com")) == 2
    assert recorded(state).filter(pl.col("owner") == "Ivan Novak").height == 2


def test_a_refused_recipient_fails_that_owner_only_and_the_next_run_retries_it(
        state: Path, smtp: tuple[Inbox, str]) -> None:
    inbox, where = smtp
    inbox.refuse = {"ivan.novak@example.com"}
    summary = state.parent / "notify.json"
    result = lifecycle("notify", "--state", state, "--addresses", OWNERS, "--smtp", where,
                       "--summary-json", summary)
    owners = due_owners(state)
    assert result.returncode == 1
    assert "error: 1 digest(s) not delivered" in result.stderr
    assert ("Ivan Novak (smtp to ivan.novak@example.com): the mail server refused "
            "ivan.novak@example.com (550 5.1.1 no such mailbox here)") in result.stderr
    assert "Traceback" not in result.stderr
    assert len(inbox.messages) == len(owners) - 1
    assert sorted(recorded(state)["owner"]) == sorted(owners - {"Ivan Novak"})
    facts = json.loads(summary.read_text())
    assert (facts["status"], facts["exit_code"], facts["failed"]) == ("failed", 1, 1)
    [failed] = [d for d in facts["deliveries"] if d["status"] == "failed"]
    assert failed["owner"] == "Ivan Novak" and "550" in failed["error"]

    inbox.refuse = set()
    retry = lifecycle("notify", "--state", state, "--addresses", OWNERS, "--smtp", where)
    assert retry.returncode == 0, retry.stderr
    assert len(inbox.messages) == len(owners)  # only the failed one went out again
    assert len(inbox.to("ivan.novak@example.com")) == 1
    assert sorted(recorded(state)["owner"]) == sorted(owners)


def test_starttls_and_the_login_from_the_environment(state: Path,
                                                     certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, data) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"cs-bot", b"s3cret")
        return AuthResult(success=ok, handled=False)  # the server answers 535

    inbox = Inbox()
    controller, where = start_smtp(inbox, tls_context=context, require_starttls=True,
                                   authenticator=authenticator, auth_required=True)
    trust = {"SSL_CERT_FILE": str(cert)}
    args = ["notify", "--state", state, "--addresses", OWNERS, "--smtp", where, "--smtp-tls",
            "--owner", "Ivan Novak", "--owner", "Grace Liu"]
    try:
        wrong = lifecycle(*args, env={**trust, "LIFECYCLE_SMTP_USER": "cs-bot",
                                      "LIFECYCLE_SMTP_PASSWORD": "guess"})
        assert wrong.returncode == 1
        assert wrong.stderr.count("refused the login of cs-bot (LIFECYCLE_SMTP_USER): 535") == 2
        assert recorded(state).height == 0 and inbox.messages == []

        untrusted = lifecycle(*args, env={"LIFECYCLE_SMTP_USER": "cs-bot",
                                          "LIFECYCLE_SMTP_PASSWORD": "s3cret"})
        assert untrusted.returncode == 1 and "TLS with the mail server" in untrusted.stderr

        missing = lifecycle(*args, env={**trust, "LIFECYCLE_SMTP_USER": "cs-bot",
                                        "LIFECYCLE_SMTP_PASSWORD": ""})
        assert missing.returncode == 2
        assert "LIFECYCLE_SMTP_USER is set but LIFECYCLE_SMTP_PASSWORD is not" in missing.stderr

        good = lifecycle(*args, env={**trust, "LIFECYCLE_SMTP_USER": "cs-bot",
                                     "LIFECYCLE_SMTP_PASSWORD": "s3cret"})
        assert good.returncode == 0, good.stderr
        assert len(inbox.messages) == 2 and all(auth for _, _, auth in inbox.messages)
        assert sorted(recorded(state)["owner"]) == ["Grace Liu", "Ivan Novak"]
    finally:
        controller.stop()


def test_smtp_tls_required_but_not_offered_is_one_clear_error_per_owner(
        state: Path, smtp: tuple[Inbox, str]) -> None:
    inbox, where = smtp
    result = lifecycle("notify", "--state", state, "--addresses", OWNERS, "--smtp", where,
                       "--smtp-tls", "--owner", "Ivan Novak", "--owner", "Grace Liu")
    assert result.returncode == 1
    assert result.stderr.count(f"the mail server {where} does not offer STARTTLS") == 2
    assert inbox.messages == [] and recorded(state).height == 0


def test_a_mail_server_that_is_not_there_fails_every_owner_and_records_nothing(
        state: Path) -> None:
    where = f"127.0.0.1:{free_port()}"
    result = lifecycle("notify", "--state", state, "--addresses", OWNERS, "--smtp", where,
                       "--timeout", "5")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    owners = due_owners(state)
    assert result.stderr.count(f"cannot connect to the mail server {where}") == len(owners)
    assert recorded(state).height == 0


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict], set[str]]]:
    """A chat webhook on localhost: its URL, the JSON bodies it took, and the owners whose
    digest it answers with HTTP 500."""
    failing: set[str] = set()
    with json_webhook("/services/T0/B0/SECRET", refuse=lambda body: body["owner"] in failing,
                      keep_path=True) as (url, received):
        yield url, received, failing


def test_the_webhook_gets_one_post_per_owner_and_a_500_fails_that_owner(
        state: Path, webhook: tuple[str, list[dict], set[str]]) -> None:
    url, received, failing = webhook
    failing.add("Grace Liu")
    result = lifecycle("notify", "--state", state, "--webhook", url)
    owners = due_owners(state)
    assert result.returncode == 1
    assert "Grace Liu (webhook to http://127.0.0.1:" in result.stderr
    assert "answered HTTP 500 Internal Server Error: channel_is_archived" in result.stderr
    assert "SECRET" not in result.stderr  # a webhook's path is its key
    assert sorted(b["owner"] for b in received) == sorted(owners - {"Grace Liu"})
    [ivan] = [b for b in received if b["owner"] == "Ivan Novak"]
    assert ivan["text"].startswith(f"*Ivan Novak*: lifecycle CTAs for {LATEST}: 0 past due, "
                                   "2 due today, 0 new")
    assert "O'Brien Systems 33 LLC (C0000033)" in ivan["text"]
    assert ivan["counts"] == {"past_due": 0, "due_today": 2, "new": 0, "ctas": 2, "tasks": 6}
    assert [c["customer_id"] for c in ivan["ctas"]] == ["C0000033", "C0000313"]
    assert ivan["ctas"][0]["tasks"][0] == {"seq": 1, "task": "Send the welcome pack and admin "
                                           "invites", "due_on": LATEST}
    rows = recorded(state)
    assert "Grace Liu" not in rows["owner"].to_list() and rows.height == len(owners) - 1
    assert all("SECRET" not in a and a.endswith("/...") for a in rows["address"])

    failing.clear()
    retry = lifecycle("notify", "--state", state, "--webhook", url)
    assert retry.returncode == 0, retry.stderr
    assert [b["owner"] for b in received].count("Grace Liu") == 1
    assert len(received) == len(owners)


def test_an_owner_s_own_webhook_in_the_addresses_comes_first(
        state: Path, tmp_path: Path, webhook: tuple[str, list[dict], set[str]]) -> None:
    url, received, _ = webhook
    base = url.rsplit("/services/", 1)[0]
    book = tmp_path / "owners.csv"
    book.write_text(f"owner,webhook\nIvan Novak,{base}/ivan\n")
    result = lifecycle("notify", "--state", state, "--addresses", book, "--webhook", url,
                       "--owner", "Ivan Novak", "--owner", "Grace Liu")
    assert result.returncode == 0, result.stderr
    paths = {b["owner"]: b["_path"] for b in received}
    assert paths == {"Ivan Novak": "/ivan", "Grace Liu": "/services/T0/B0/SECRET"}


def test_eml_files_parse_back_and_a_rerun_writes_none_again(state: Path, tmp_path: Path
                                                           ) -> None:
    folder = tmp_path / "digests"
    result = lifecycle("notify", "--state", state, "--addresses", OWNERS, "--eml", folder,
                       "--from", "cs-ops@example.com")
    assert result.returncode == 0, result.stderr
    owners = due_owners(state)
    files = sorted(folder.iterdir())
    assert len(files) == len(owners) and all(f.suffix == ".eml" for f in files)
    path = folder / f"{LATEST}-Chloé-Dubois.eml"
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["To"] == "Chloé Dubois <chloe.dubois@example.com>"
    assert message["X-Lifecycle-As-Of"] == LATEST
    assert message["Subject"].startswith(f"Your CTAs for {LATEST}: 0 past due, ")
    assert "Chloé Dubois, your lifecycle CTAs" in message.get_body(("plain",)).get_content()
    assert recorded(state).filter(pl.col("owner") == "Chloé Dubois")["address"].to_list() \
        == [str(path)]
    path.unlink()
    again = lifecycle("notify", "--state", state, "--addresses", OWNERS, "--eml", folder)
    assert again.returncode == 0 and not path.exists()


def test_new_ctas_are_those_created_since_the_owner_s_last_digest(state: Path,
                                                                  tmp_path: Path) -> None:
    first = lifecycle("notify", "--state", state, "--as-of", DAYS[0], "--addresses", OWNERS,
                      "--eml", tmp_path / "mail", "--owner", "Ivan Novak")
    assert first.returncode == 0, first.stderr
    [path] = (tmp_path / "mail").iterdir()
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    # the state's first date: every CTA its run created is new
    assert message["Subject"].endswith(", 10 new")
    text = message.get_body(("plain",)).get_content()
    assert "NEW (10)" in text and "Quarterly business review" in text


def test_dry_run_prints_the_digests_and_changes_nothing(state: Path) -> None:
    before = snapshot(state)
    result = lifecycle("notify", "--state", state, "--addresses", OWNERS, "--smtp",
                       "127.0.0.1:1", "--owner", "ivan novak", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("To: Ivan Novak <ivan.novak@example.com>\nSubject: Your "
                                    f"CTAs for {LATEST}: 0 past due, 2 due today, 0 new\n")
    assert "would send  Ivan Novak  smtp  ivan.novak@example.com" in result.stderr
    assert snapshot(state) == before


def test_owners_without_an_address_are_reported_and_default_to_reaches_them(
        state: Path, tmp_path: Path) -> None:
    book = tmp_path / "owners.csv"
    book.write_text("Owner,E-mail\nIvan Novak,ivan@example.com\n")
    folder = tmp_path / "mail"
    result = lifecycle("notify", "--state", state, "--addresses", book, "--eml", folder,
                       "--owner", "Ivan Novak", "--owner", "Grace Liu")
    assert result.returncode == 1
    assert ("Grace Liu (eml): no email address: add the owner to --addresses FILE, or give "
            "--default-to ADDRESS") in result.stderr
    assert recorded(state)["owner"].to_list() == ["Ivan Novak"]
    result = lifecycle("notify", "--state", state, "--addresses", book, "--eml", folder,
                       "--owner", "Ivan Novak", "--owner", "Grace Liu",
                       "--default-to", "cs-team@example.com")
    assert result.returncode == 0, result.stderr
    assert sorted(recorded(state)["address"].str.contains("Grace-Liu")) == [False, True]


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--as-of", "2026-10-01", "--dry-run"], 2,
     "the state has no run for 2026-10-01 (its dates run from 2026-10-31 to 2026-11-01"),
    (["--owner", "Ivan Novek", "--dry-run"], 2,
     "--owner 'Ivan Novek': no open CTA has this owner (did you mean 'Ivan Novak'?"),
    (["--smtp", "mail.example.com:port"], 2, "'mail.example.com:port': write HOST:PORT"),
    (["--webhook", "hooks.example.com/x"], 2, "is not an http(s) URL"),
    (["--from", "cs ops"], 2, "--from 'cs ops' is not an email address"),
    (["--default-to", "team", "--dry-run"], 2, "--default-to 'team' is not an email address"),
    (["--no-smtp-tls", "--eml", "x"], 2, "--smtp-tls and --no-smtp-tls apply to --smtp"),
    ([], 2, "no channel to send on"),
])
def test_mistakes_are_messages_and_nothing_is_sent(state: Path, args: list[str], code: int,
                                                   message: str) -> None:
    before = snapshot(state)
    result = lifecycle("notify", "--state", state, *args)
    assert result.returncode == code, result.stderr
    flat = " ".join(result.stderr.split()).replace(" hint: ", " (")
    assert message in flat, result.stderr
    assert snapshot(state) == before


def test_a_bad_addresses_file_names_its_lines_and_sends_nothing(state: Path, tmp_path: Path,
                                                                smtp: tuple[Inbox, str]) -> None:
    inbox, where = smtp
    book = tmp_path / "owners.csv"
    book.write_text("owner,email\nIvan Novak,ivan@example.com\nGrace Liu,grace at example\n"
                    "ivan novak,other@example.com\n")
    result = lifecycle("notify", "--state", state, "--addresses", book, "--smtp", where)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "'grace at example' is not an email address (1 row(s): line 3)" in result.stderr
    assert "the owner 'Ivan Novak' is listed twice with other addresses (2 row(s): line 2, " \
           "line 4)" in result.stderr
    assert inbox.messages == [] and recorded(state).height == 0
    nameless = tmp_path / "nameless.csv"
    nameless.write_text("person,email\nIvan Novak,ivan@example.com\n")
    result = lifecycle("notify", "--state", state, "--addresses", nameless, "--smtp", where)
    assert result.returncode == 1 and "the file has no column 'owner'" in result.stderr


def test_a_rerun_of_the_date_keeps_what_was_sent(state: Path, smtp: tuple[Inbox, str]) -> None:
    """`lifecycle run` for the same date again replaces its records, but not the digests
    that went out: they are not sent twice."""
    inbox, where = smtp
    args = ["notify", "--state", state, "--addresses", OWNERS, "--smtp", where, "--owner",
            "Ivan Novak"]
    assert lifecycle(*args).returncode == 0
    rerun = lifecycle("run", *SAMPLE, "--as-of", LATEST, "--state", state, "--out",
                      state.parent / "out", "--quiet")
    assert rerun.returncode == 0, rerun.stderr
    assert recorded(state)["owner"].to_list() == ["Ivan Novak"]
    again = lifecycle(*args)
    assert again.returncode == 0 and "1 already sent" in again.stderr
    assert len(inbox.messages) == 1
