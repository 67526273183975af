"""`lifecycle notify` as a library call: each owner's digest of a state's date, delivered at
most once.

:func:`notify` reads the worklist of the state's date (default: its latest),
makes each owner's digest (`lifecycle_cli.notify.digest`) and delivers it on
every channel asked for (SMTP, a webhook, ``.eml`` files:
`lifecycle_cli.notify.channels`). The state records each digest delivered in
the date's ``notifications`` table (owner, channel, address, when, counts),
and a later call for the same date and channel skips the owners it names:
a re-run sends nothing twice (``resend=True`` sends again, and records it).

It holds the state's lock while it sends, and records each digest as soon as
it is delivered (one commit of the index per digest), so a digest that went
out is recorded even if a later owner's fails, or the process is killed. A
digest that fails (the server refused its recipient, the webhook answered
500, an owner has no address) is not recorded: the next call retries it.
Problems with the call itself (an unknown owner or date, a bad addresses
file) raise before anything is sent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..columns import NOTIFICATION_SCHEMA
from ..errors import OptionError, Problem
from ..notify.addresses import Addresses, owner_key, read_addresses, valid_email
from ..notify.channels import (
    EML,
    SMTP,
    WEBHOOK,
    DeliveryError,
    EmlChannel,
    SmtpChannel,
    SmtpSettings,
    WebhookChannel,
    email_message,
    redact,
)
from ..notify.digest import DUE_TODAY, NEW, PAST_DUE, Digest, digests
from ..state.lock import lock
from ..state.store import State, StateError, Transaction
from ..state.view import StateView
from ..suggest import did_you_mean

SENT, ALREADY_SENT, FAILED, WOULD_SEND = "sent", "already_sent", "failed", "would_send"
PREVIEW = "preview"  # the channel of a dry run given none: the email, to nobody


@dataclass(frozen=True)
class Channels:
    """Where digests go: any of SMTP, a webhook and a folder of .eml files."""

    smtp: SmtpSettings | None = None
    webhook: str | None = None  # the default URL (an owner's own, from the addresses, wins)
    eml: Path | None = None
    timeout: float = 30.0
    sender: str = "lifecycle@localhost"  # From: of .eml files (SMTP's is smtp.sender)

    @property
    def names(self) -> list[str]:
        return [name for name, on in ((SMTP, self.smtp), (WEBHOOK, self.webhook),
                                      (EML, self.eml)) if on is not None]


@dataclass
class Delivery:
    """One owner's digest on one channel: what happened to it."""

    owner: str
    channel: str
    address: str | None
    status: str  # sent, already_sent, failed, would_send (a dry run)
    counts: dict[str, int]
    error: str | None = None
    warning: str | None = None  # delivered, but some recipients were refused
    preview: str | None = None  # a dry run: the message as it would go


@dataclass
class NotifyResult:
    """What `notify` did for one as-of date."""

    as_of: dt.date
    channels: list[str]
    deliveries: list[Delivery] = field(default_factory=list)
    nothing_to_send: list[str] = field(default_factory=list)  # open CTAs, none due or new
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False

    def having(self, status: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.status == status]

    @property
    def failed(self) -> bool:
        return bool(self.having(FAILED))

    def summary(self) -> dict[str, Any]:
        """The ``--summary-json`` document."""
        return {
            "command": "notify",
            "status": "failed" if self.failed else "ok",
            "exit_code": 1 if self.failed else 0,
            "as_of": self.as_of.isoformat(),
            "dry_run": self.dry_run,
            "channels": self.channels,
            **{status: len(self.having(status))
               for status in (SENT, ALREADY_SENT, FAILED, WOULD_SEND)},
            "deliveries": [
                {"owner": d.owner, "channel": d.channel, "address": d.address,
                 "status": d.status, **d.counts, "error": d.error, "warning": d.warning}
                for d in self.deliveries],
            "nothing_to_send": self.nothing_to_send,
            "warnings": self.warnings,
        }


def notify(
    state_dir: str | Path,
    channels: Channels,
    *,
    as_of: dt.date | None = None,
    owners: Sequence[str] = (),
    addresses: str | Path | None = None,
    default_to: Sequence[str] = (),
    resend: bool = False,
    dry_run: bool = False,
    encoding: str | None = None,
    command: str = "lifecycle notify",
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> NotifyResult:
    """Deliver each owner's digest of ``as_of`` (default: the state's latest date) on every
    channel of ``channels``, once; see the module's docstring."""
    state_dir = Path(state_dir)
    if not channels.names and not dry_run:
        raise OptionError(Problem("no channel to send on",
                                  hint="give --smtp HOST:PORT, --webhook URL or --eml DIR "
                                  "(or --dry-run to look at the digests)"))
    bad = [a for a in default_to if not valid_email(a)]
    if bad:
        raise OptionError(Problem(f"--default-to {bad[0]!r} is not an email address",
                                  hint="write name@example.com"))
    book = read_addresses(Path(addresses), encoding) if addresses is not None else Addresses()
    StateView.open(state_dir)  # a clear message for a folder that holds no state
    with (contextlib.nullcontext() if dry_run else lock(state_dir, command)):
        store = State.open(state_dir)
        return _notify(store, channels, as_of, owners, book, list(default_to),
                       resend=resend, dry_run=dry_run, now=now)


def _notify(store: State, channels: Channels, as_of: dt.date | None, owners: Sequence[str],
            book: Addresses, default_to: list[str], *, resend: bool, dry_run: bool,
            now: Callable[[], dt.datetime]) -> NotifyResult:
    view = StateView(store)
    day = _day(view, as_of)
    work = view.worklist(day)
    unowned = work.items.filter(pl.col("owner").is_null() & (pl.col("seq") == 0)).height
    items = _only(work.items, work.owners, owners)
    result = NotifyResult(day, channels.names, dry_run=dry_run)
    if unowned:
        result.warnings.append(
            f"{unowned:,} open CTA(s) have no owner and are in no digest (give the customers "
            "an owner, or the rules a default_owner)")
    recorded = view.notifications()
    names = channels.names or [PREVIEW]  # a dry run without a channel shows the email
    every: set[str] = set()
    senders = _senders(channels)
    try:
        for channel in names:
            # new: since the owner's last digest; for a first one, since the date before
            found = digests(items, day, _since(recorded, day, channel),
                            default_since=view.before(day))
            every |= {d.owner for d in found}
            done_today = dict(recorded.filter((pl.col("as_of") == day)
                                              & (pl.col("channel") == channel))
                              .select(owner_key(pl.col("owner")), "address").iter_rows())
            for digest in found:
                delivery = Delivery(digest.owner, channel, None, "", dict(digest.counts))
                result.deliveries.append(delivery)
                if digest.owner.strip().lower() in done_today and not resend:
                    delivery.status = ALREADY_SENT
                    delivery.address = done_today[digest.owner.strip().lower()]
                    continue
                _deliver(delivery, digest, channels, senders.get(channel), book, default_to,
                         dry_run=dry_run, now=now)
                if delivery.status == SENT:
                    _record(store, day, delivery, now())
    finally:
        for sender in senders.values():
            if isinstance(sender, SmtpChannel):
                sender.close()
    listed = set(items.filter(pl.col("owner").is_not_null())["owner"].unique().to_list())
    result.nothing_to_send = sorted(listed - every)
    return result


def _day(view: StateView, as_of: dt.date | None) -> dt.date:
    if view.latest is None:
        raise StateError(Problem("the state holds no runs yet: there are no CTAs to send",
                                 file=str(view.path)))
    if as_of is None:
        return view.latest
    if as_of not in view.days:
        known = view.days
        raise OptionError(Problem(
            f"the state has no run for {as_of}", file=str(view.path),
            hint=f"its dates run from {known[0]} to {known[-1]}; leave --as-of out for the "
            f"latest, {known[-1]}"))
    return as_of


def _only(items: pl.DataFrame, known: list[str], owners: Sequence[str]) -> pl.DataFrame:
    """The worklist of the owners named (case and blanks ignored); an unknown one is an
    error naming the closest owner with open CTAs."""
    if not owners:
        return items
    keys = {o.strip().lower(): o for o in known}
    problems = [Problem(f"--owner {o!r}: no open CTA has this owner",
                        hint=did_you_mean(o, known) or ("owners with open CTAs: "
                                                        + ", ".join(known[:10])))
                for o in owners if o.strip().lower() not in keys]
    if problems:
        raise OptionError(problems)
    wanted = [o.strip().lower() for o in owners]
    return items.filter(owner_key(pl.col("owner")).is_in(wanted))


def _since(recorded: pl.DataFrame, day: dt.date, channel: str) -> pl.DataFrame:
    """For each owner, their last digest's date on ``channel`` before ``day``: a CTA created
    after it is new."""
    return (recorded.filter((pl.col("channel") == channel) & (pl.col("as_of") < day))
            .group_by("owner").agg(pl.col("as_of").max().alias("since")))


def _senders(channels: Channels) -> dict[str, Any]:
    senders: dict[str, Any] = {}
    if channels.smtp is not None:
        senders[SMTP] = SmtpChannel(channels.smtp)
    if channels.webhook is not None:
        senders[WEBHOOK] = WebhookChannel(channels.webhook, channels.timeout)
    if channels.eml is not None:
        senders[EML] = EmlChannel(channels.eml)
    return senders


def footer(as_of: dt.date) -> str:
    return (f"Sent by lifecycle notify for {as_of}. A CTA's id is what `lifecycle ctas "
            "close|snooze|done` takes.")


def _deliver(delivery: Delivery, digest: Digest, channels: Channels, sender: Any,
             book: Addresses, default_to: list[str], *, dry_run: bool,
             now: Callable[[], dt.datetime]) -> None:
    """Send ``digest`` on ``delivery.channel``; set the delivery's status, address, error."""
    owner = digest.owner
    if delivery.channel == WEBHOOK:
        url = book.webhook(owner) or channels.webhook
        delivery.address = redact(url) if url else None
        if url is None:  # pragma: no cover (the channel is on only with a default URL)
            delivery.status, delivery.error = FAILED, "no webhook"
            return
        body = digest.slack()
        if dry_run:
            delivery.status, delivery.preview = WOULD_SEND, body["text"]
            return
        try:
            sender.post(url, body)
        except DeliveryError as err:
            delivery.status, delivery.error = FAILED, str(err)
            return
        delivery.status = SENT
        return
    to = book.email(owner) or default_to
    if not to and not channels.names:  # a dry run without a channel: the digest only
        to = []
    elif not to:
        delivery.status = FAILED
        delivery.error = ("no email address: add the owner to --addresses FILE, or give "
                          "--default-to ADDRESS")
        return
    delivery.address = ", ".join(to) or None
    origin = channels.smtp.sender if channels.smtp is not None else channels.sender
    message = email_message(digest, origin, to, now(), footer(digest.as_of))
    if dry_run:
        delivery.status = WOULD_SEND
        delivery.preview = ((f"To: {message['To']}\n" if to else "")
                            + f"Subject: {message['Subject']}\n\n"
                            + digest.text(footer(digest.as_of)))
        return
    try:
        if delivery.channel == SMTP:
            sender.send(message)
            if sender.refused:
                delivery.warning = "the mail server refused " + ", ".join(
                    f"{a} ({why})" for a, why in sender.refused.items())
        else:
            delivery.address = str(sender.write(message, owner, digest.as_of))
    except DeliveryError as err:
        delivery.status, delivery.error = FAILED, str(err)
        return
    delivery.status = SENT


def _record(store: State, day: dt.date, delivery: Delivery, at: dt.datetime) -> None:
    """Add a delivered digest to the date's ``notifications``: one commit, at once."""
    row = pl.DataFrame([{
        "as_of": day, "owner": delivery.owner, "channel": delivery.channel,
        "address": delivery.address, "sent_at": at,
        **{k: delivery.counts.get(k, 0) for k in ("ctas", PAST_DUE, DUE_TODAY, NEW, "tasks")},
    }], schema=NOTIFICATION_SCHEMA)
    before = StateView(store).notifications(day, day)
    with Transaction(store) as txn:
        txn.put_tables(day, {"notifications": pl.concat([before, row])})
        txn.commit()
