"""gunicorn entry point: `gunicorn wsgi:app`. Refuses to serve as a database role that RLS does not bind.

The `flask --app wsgi ...` commands import this module too; they skip the check, because the release step's
`db upgrade` is what creates the app role in the first place, and the operator commands act on purpose.
"""

import os

from app import create_app
from app.dbcheck import check_app_role
from app.services import services_of

app = create_app()
if os.environ.get("FLASK_RUN_FROM_CLI") != "true":
    check_app_role(services_of(app).engine)
