"""The file a Databricks job (spark_python_task) or spark-submit runs: `lifecycle run` with
--engine spark on the cluster's session. The arguments are `lifecycle run`'s; see
docs/engines.md ("Spark")."""

from lifecycle_cli.cli.spark_job import main

main()
