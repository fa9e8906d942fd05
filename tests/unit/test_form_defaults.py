"""The manager page's export form starts from the API's own defaults."""

import re
from pathlib import Path

from trainset.api_schema import RULES
from trainset.quality import EM_MAX_ITERATIONS

PAGE = Path(__file__).resolve().parents[2] / "static_site" / "index.html"


def test_the_em_cap_field_starts_at_the_models_cap():
    field = re.search(r'<input id="exp-em"[^>]*>', PAGE.read_text())
    assert field is not None
    value = re.search(r'value="(\d+)"', field.group(0))
    assert value is not None and int(value.group(1)) == EM_MAX_ITERATIONS
    assert RULES["properties"]["em_max_iterations"]["default"] == EM_MAX_ITERATIONS
