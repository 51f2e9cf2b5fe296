"""results.json and JUnit XML as sinks (their formats live in runbooks.reports)."""

from __future__ import annotations

import json
from typing import Any

from ..reports import junit_xml, results_document
from ..result import StepRecord
from . import FileSink


class JUnitSink(FileSink):
    def render(self, metadata: dict[str, Any], records: list[StepRecord]) -> str:
        return junit_xml(metadata, records)


class ResultsJsonSink(FileSink):
    def render(self, metadata: dict[str, Any], records: list[StepRecord]) -> str:
        return json.dumps(results_document(metadata, records), indent=2) + "\n"
