"""Jobs that run days: the nightly run (`nightly`), a backfill of many days (`backfill`),
and two rule sets compared on one day (`diff`)."""
