"""Chapter 2's own tests run in-process: Django set up with the chapter's settings, Channels' in-memory layer."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django.setup()


def pytest_configure(config: object) -> None:
    config.addinivalue_line(  # type: ignore[attr-defined]
        "markers", "chat(capacity=…, **settings): the channel layer's capacity and CHAT settings for one test"
    )
