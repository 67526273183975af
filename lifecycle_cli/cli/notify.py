"""`lifecycle notify`: each owner's morning digest of CTAs, by SMTP, webhook or .eml files,
sent at most once per owner, channel and as-of date."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated

import typer

from ..errors import EXIT_BAD_INPUT, OptionError, Problem
from . import common
from .render import escape

USER_VAR, PASSWORD_VAR = "LIFECYCLE_SMTP_USER", "LIFECYCLE_SMTP_PASSWORD"


def register(app: typer.Typer) -> None:
    app.command(
        "notify",
        epilog=common.examples(
            "lifecycle notify --state out/state --dry-run",
            "lifecycle notify --state out/state --addresses sample_data/owners.csv --eml "
            "out/digests",
            "lifecycle notify --state out/state --addresses sample_data/owners.csv --smtp "
            "smtp.example.com:587 --from cs-ops@example.com --owner 'Ivan Novak' --dry-run",
            "lifecycle notify --state out/state --webhook https://hooks.slack.com/services/T0/B0/X "
            "--dry-run",
        ),
    )(notify)


def _smtp_address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, "25"
    if not host.strip() or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"'{value}': write HOST:PORT, e.g. smtp.example.com:587",
                                 param_hint="'--smtp'")
    return host.strip().strip("[]"), int(port)


@common.handle_errors
def notify(
    state: Annotated[
        Path,
        typer.Option("--state", help="The state folder that `lifecycle run --state` keeps; "
                     "the digests sent are recorded in it.", show_default=False),
    ],
    as_of: Annotated[
        dt.date | None,
        typer.Option("--as-of", help="A date of the state (YYYY-MM-DD). Default: its latest.",
                     parser=common.parse_date, metavar="YYYY-MM-DD", show_default=False),
    ] = None,
    owner: Annotated[
        list[str] | None,
        typer.Option("--owner", help="Only this owner's digest (case ignored). Repeat for "
                     "several.", show_default=False, metavar="NAME"),
    ] = None,
    addresses: Annotated[
        Path | None,
        typer.Option("--addresses", help="Owners' addresses: a table (.csv, .xlsx, ...) with "
                     "the columns owner and email (several: separated by ;) and/or webhook.",
                     show_default=False, metavar="FILE"),
    ] = None,
    default_to: Annotated[
        list[str] | None,
        typer.Option("--default-to", help="The email address of owners the addresses lack "
                     "(a team inbox). Repeat for several.", show_default=False,
                     metavar="ADDRESS"),
    ] = None,
    smtp: Annotated[
        str | None,
        typer.Option("--smtp", help="Send by email through this mail server (port 25 if "
                     "left out; 465: TLS from the start). The login comes from "
                     f"{USER_VAR} and {PASSWORD_VAR} when they are set.",
                     show_default=False, metavar="HOST:PORT"),
    ] = None,
    sender: Annotated[
        str | None,
        typer.Option("--from", help="The sender of the emails. Default: lifecycle@ this "
                     "machine's name.", show_default=False, metavar="ADDRESS"),
    ] = None,
    smtp_tls: Annotated[
        bool | None,
        typer.Option("--smtp-tls/--no-smtp-tls", help="Require STARTTLS, or never use it. "
                     "Default: STARTTLS when the server offers it.", show_default=False),
    ] = None,
    webhook: Annotated[
        str | None,
        typer.Option("--webhook", help="Post each digest as JSON ({\"text\": ...} and the "
                     "CTAs) to this incoming webhook (Slack, Mattermost, Teams, Google "
                     "Chat); an owner's own webhook in --addresses comes first.",
                     show_default=False, metavar="URL"),
    ] = None,
    eml: Annotated[
        Path | None,
        typer.Option("--eml", help="Write each digest as an .eml file into this folder "
                     "(created if needed).", show_default=False, metavar="DIR"),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", help="Seconds to wait for the mail server or the webhook.",
                     min=1, metavar="SECONDS"),
    ] = 30.0,
    resend: Annotated[
        bool, typer.Option("--resend", help="Send again the digests already sent for the "
                           "date (and record them again).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the digests that would go out; send and "
                           "record nothing.")
    ] = False,
    encoding: common.EncodingOpt = None,
    quiet: common.QuietOpt = False,
    summary_json: common.SummaryJsonOpt = None,
) -> None:
    """Send each owner a digest of their CTAs: past due, due today and new, with the open
    tasks.

    The CTAs are the worklist of the state's date (what `lifecycle ctas` lists). A CTA is
    past due when it or one of its open tasks is, due today likewise, and new when it was
    created after the owner's last digest; owners with none of these get nothing. Each
    digest is sent at most once per owner, channel and as-of date: the state records what
    was delivered, and a re-run sends only what failed. A failure is reported per owner
    and exits 1; the digests that went out stay recorded.
    """
    from ..jobs.notify import Channels
    from ..jobs.notify import notify as send
    from ..notify.channels import SmtpSettings

    with common.summary_on_error(summary_json, as_of):
        if dry_run and summary_json == Path("-"):
            raise OptionError("--dry-run prints the digests and --summary-json - its summary, "
                              "both on standard output; give --summary-json a file")
        settings = None
        origin = _sender(sender)
        if smtp is not None:
            host, port = _smtp_address(smtp)
            user, password = os.environ.get(USER_VAR) or None, os.environ.get(PASSWORD_VAR)
            if user is not None and not password:
                raise OptionError(Problem(f"{USER_VAR} is set but {PASSWORD_VAR} is not",
                                          hint=f"export {PASSWORD_VAR} too, or unset {USER_VAR}"))
            settings = SmtpSettings(host, port, origin, smtp_tls, user, password, timeout)
        elif smtp_tls is not None:
            raise OptionError(Problem("--smtp-tls and --no-smtp-tls apply to --smtp",
                                      hint="add --smtp HOST:PORT, or leave it out"))
        if webhook is not None and not re.match(r"^https?://[^\s/]+", webhook):
            raise OptionError(Problem(f"--webhook {webhook!r} is not an http(s) URL",
                                      hint="give the incoming webhook's URL, https://..."))
        if eml is not None and eml.exists() and not eml.is_dir():
            raise OptionError(Problem("--eml needs a folder; this is a file", file=str(eml)))
        channels = Channels(settings, webhook, eml, timeout, origin)
        result = send(state, channels, as_of=as_of, owners=owner or [], addresses=addresses,
                      default_to=default_to or [], resend=resend, dry_run=dry_run,
                      encoding=encoding, command=common.command_line())
    if dry_run:
        previews = [d.preview for d in result.deliveries if d.preview]
        text = ("\n" + "=" * 72 + "\n\n").join(previews)
        if text:
            common.write_to_stdout(lambda stream: stream.write(text.encode("utf-8")))
    if summary_json is not None:
        common.write_json(summary_json, result.summary())
    _summary(result, quiet=quiet)
    if result.failed:
        raise typer.Exit(EXIT_BAD_INPUT)


def _sender(given: str | None) -> str:
    if given is None:
        return f"lifecycle@{socket.gethostname() or 'localhost'}"
    _name, address = parseaddr(given)
    if not re.match(r"^[^@\s]+@[^@\s]+$", address):
        raise OptionError(Problem(f"--from {given!r} is not an email address",
                                  hint="write cs-ops@example.com, or 'CS Ops "
                                  "<cs-ops@example.com>'"))
    return given


_SAID = {"sent": "sent", "already_sent": "already sent", "failed": "FAILED",
         "would_send": "would send"}


def _summary(result: object, *, quiet: bool) -> None:
    from ..jobs.notify import ALREADY_SENT, FAILED, SENT, WOULD_SEND, NotifyResult

    assert isinstance(result, NotifyResult)
    err = common.err
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    for d in result.deliveries:
        if d.warning:
            err.print(f"[yellow]warning:[/] {escape(d.owner)} ({d.channel}): "
                      f"{escape(d.warning)}")
    if not quiet:
        counts = ", ".join(f"{len(result.having(s))} {_SAID[s].lower()}"
                           for s in (SENT, ALREADY_SENT, FAILED, WOULD_SEND)
                           if result.having(s))
        err.print(f"notify for {result.as_of} ({', '.join(result.channels) or 'no channel'}): "
                  f"{counts or 'nothing to send'}")
        shown = [d for d in result.deliveries if d.status != FAILED]
        widths = [max((len(text) for text in column), default=0) for column in zip(
            *((_SAID[d.status], d.owner, d.channel, d.address or "") for d in shown),
            strict=True)] or [0, 0, 0, 0]
        for d in shown:
            c = d.counts
            cells = [_SAID[d.status], d.owner, d.channel, d.address or ""]
            line = "  ".join(text.ljust(width) for text, width in zip(cells, widths,
                                                                       strict=True))
            err.print(f"  {escape(line)}  {c['past_due']} past due, {c['due_today']} due "
                      f"today, {c['new']} new")
        if result.nothing_to_send:
            err.print("  nothing past due, due today or new: "
                      + escape(", ".join(result.nothing_to_send)))
    failed = result.having(FAILED)
    if failed:
        err.print(f"[bold red]error:[/] {len(failed)} digest(s) not delivered; they are "
                  "not recorded, so the next run retries them")
        for d in failed:
            where = f" to {d.address}" if d.address else ""
            err.print(f"  [bold]{escape(d.owner)}[/] ({d.channel}{escape(where)}): "
                      f"{escape(d.error or '')}")
