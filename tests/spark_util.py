"""The one Spark session of a test run: local[2], started once (about 15-30 s), stopped at
the end. Tests that use it are marked ``spark`` (``pytest -m spark`` runs only them;
``-m "not spark"`` leaves them out).

Without pyspark or Java they skip, except under ``CI=1``, where they fail: CI installs
both (``.ci/run``), and an engine that isn't tested is not an engine we ship.
"""

from __future__ import annotations

import os
import tempfile

import pytest

from lifecycle_cli.errors import LifecycleError
from lifecycle_cli.sql.backend import EngineChoice

MASTER = "local[2]"


def choice(timezone: str = "UTC", **conf: str) -> EngineChoice:
    """--engine spark as the tests give it."""
    return EngineChoice(name="spark", timezone=timezone, spark_master=MASTER,
                        spark_conf=dict(conf))


_STARTED: dict[str, object] = {}


def start() -> object:
    """The process's Spark session (see the module's docstring), started on first use."""
    from lifecycle_cli.sql import spark

    if _STARTED.get("session") is not None and spark._SESSION.get("spark") is not None:
        return _STARTED["session"]
    warehouse = tempfile.mkdtemp(prefix="lifecycle-spark-warehouse-")
    try:
        _STARTED["session"] = spark.session(choice(**{"spark.sql.warehouse.dir": warehouse}))
        return _STARTED["session"]
    except LifecycleError as err:
        if os.environ.get("CI"):
            pytest.fail(f"CI must test the Spark engine: .ci/run installs Java 17 and the "
                        f"test extra pyspark; Spark did not start: {err}")
        pytest.skip(f"Spark did not start here ({err}); pip install -e '.[test]' and Java 17")
