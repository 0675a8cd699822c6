"""The README stays true to the code: every table column is documented, and CI runs the README's test command."""

import re

from tasks.schema import EVALUATION_SCHEMAS, SCHEMAS
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_readme_documents_every_column_of_every_table():
    documented = set(re.findall(r"`([A-Za-z_0-9]+)`", README))
    missing = {f"{table}.{name}" for table, schema in {**SCHEMAS, **EVALUATION_SCHEMAS}.items() for name in schema.names
               if name not in documented}
    assert not missing


def test_ci_runs_the_readme_test_command():
    command = next(line for line in README.splitlines() if line.endswith("python -m pytest -q"))
    assert command in (REPO / ".ci" / "run").read_text()
