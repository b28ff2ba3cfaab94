"""Chapter 2's Django project under a WSGI server, as `runserver` serves it without daphne (pitfall 3)."""

# Django's own development server, wsgiref from the standard library, is what `manage.py runserver` runs when
# "daphne" is not in INSTALLED_APPS. It speaks HTTP request/response only: a WebSocket handshake is just a GET
# to it. Run it alone: python 00_protocol/pitfalls/wsgi.py (port 8024).

import os
import sys
from pathlib import Path
from wsgiref.simple_server import make_server

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "02_channels"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

from django.core.wsgi import get_wsgi_application

if __name__ == "__main__":
    host, port = os.environ.get("CHAT_HOST", "127.0.0.1"), int(os.environ.get("CHAT_PORT", "8024"))
    make_server(host, port, get_wsgi_application()).serve_forever()
