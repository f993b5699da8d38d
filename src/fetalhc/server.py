"""The application ``fetalhc serve`` runs: :func:`fetalhc.api.create_app` with the default
settings (environment variables FETALHC_WORKERS, FETALHC_QUEUE, FETALHC_TIMEOUT_S,
FETALHC_MAX_UPLOAD_MB; see :class:`fetalhc.api.engine.Settings`)."""

from __future__ import annotations

from fetalhc.api import create_app

app = create_app()
