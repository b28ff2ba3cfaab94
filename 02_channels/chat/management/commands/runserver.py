"""``manage.py runserver``: daphne's development server, with chapter 2's daphne (server.ChatServer) inside."""

from daphne.management.commands.runserver import Command as DaphneRunserver
from django.conf import settings

from server import ChatServer


class Command(DaphneRunserver):  # type: ignore[misc]  # daphne has no type hints
    server_cls = ChatServer
    default_port = str(settings.CHAT.port)  # 8002, like make run-channels
