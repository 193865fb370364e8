"""gunicorn entry point: `gunicorn wsgi:app`. Refuses to serve as a database role that RLS does not bind."""

from app import create_app
from app.dbcheck import check_app_role

app = create_app()
check_app_role(app.extensions["engine"])
