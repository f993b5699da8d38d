"""HTTP API and web page of fetalhc (FastAPI): ``fetalhc serve``. See :mod:`fetalhc.api.app`;
the default application object is :data:`fetalhc.server.app`."""

from fetalhc.api.app import create_app

__all__ = ["create_app"]
