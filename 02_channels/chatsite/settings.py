"""Chapter 2's Django settings: read from the same CHAT_* variables as every chapter (SPEC.md §16)."""

from chatcore.redis_client import connection_options
from chatcore.settings import Settings

CHAT = Settings.load(default_port=8002)  # a bad CHAT_* value stops here with one line

# Django signs nothing of ours (no sessions, no forms); the chat's tokens are signed with CHAT_SECRET.
SECRET_KEY = CHAT.secret
DEBUG = False
# Browsers' WebSockets are checked by Origin (chat.middleware, SPEC.md §4); no view builds a URL from Host.
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "chat",  # first, so that its runserver (daphne's, kept to SPEC.md) wins
    "daphne",
]
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}  # the chat keeps its state in chatcore's backend, not in a database
ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"
USE_TZ = True
TIME_ZONE = "UTC"

if CHAT.redis_url:
    # Several processes: channels-redis's pub/sub layer. A group_send is one PUBLISH, and each process hands the
    # event to its own consumers, as chapters 1 and 3 do with chatcore.fanout_redis. Pub/sub delivers at most
    # once; chatcore.session refills what goes missing from history (SPEC.md §7). No read timeout (connection_options):
    # redis-py 8's default 5 s would cut the layer's idle pub/sub connection.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chat.layers.PubSubChannelLayer",  # channels-redis's, publishing concurrently
            "CONFIG": {"hosts": [connection_options(CHAT.redis_url)], "prefix": "chat-layer"},
        },
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chat.layers.MemoryChannelLayer",  # Channels' in-memory layer, without its scans
            "CONFIG": {
                # A consumer's channel holds the group messages it has not dispatched yet. Past capacity, Channels
                # drops them silently; chatcore.session refills any that go missing from history (SPEC.md §7).
                "capacity": CHAT.send_queue,
            },
        },
    }
