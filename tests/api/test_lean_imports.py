"""What an API process imports to serve the API: modules only some pages use wait for those pages.
In a fresh interpreter, since this test run has imported them all already."""

import subprocess
import sys

import pytest

from tests.api.conftest import ADMIN_KEY

_CHECK = f"""
import sys
from fastapi.testclient import TestClient
from forgestack_api.main import create_app

with TestClient(create_app()) as client:
    response = client.post(
        "/api/v1/queues/my-new-job/jobs",
        json={{"data": {{"user_id": "u1", "action": "greet"}}}},
        headers={{"Authorization": "Bearer {ADMIN_KEY}"}},
    )
    assert response.status_code == 202, response.text
    print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in {{"jinja2"}})))
"""


@pytest.mark.usefixtures("settings")
def test_serving_an_enqueue_does_not_import_the_dashboards_templates() -> None:
    done = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == ""
