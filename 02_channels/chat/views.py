"""The HTTP side of the protocol as Django views: the page and its files, tokens, health, metrics (SPEC.md §2)."""

import mimetypes
from dataclasses import asdict

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from chatcore.metrics import render
from chatcore.web import INDEX_HTML, find_client_file, grant_token, health

IMPL = "channels"


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse(INDEX_HTML.read_bytes(), content_type="text/html; charset=utf-8")


@require_GET
def client_file(request: HttpRequest, name: str) -> HttpResponse:
    path = find_client_file(name)
    if path is None:
        raise Http404(name)
    content_type, _ = mimetypes.guess_type(name)
    return HttpResponse(path.read_bytes(), content_type=content_type or "application/octet-stream")


@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse(health(IMPL))


@require_GET
async def token(request: HttpRequest) -> JsonResponse:
    grant = grant_token(request.GET.get("user"), settings.CHAT)
    response = JsonResponse(grant.body, status=grant.status)
    if grant.cookie is not None:
        response.set_cookie(**asdict(grant.cookie))
    return response


@require_GET
async def metrics(request: HttpRequest) -> HttpResponse:
    body, content_type = render()
    return HttpResponse(body, content_type=content_type)
