"""A one-module Django project with the interop routes: `asgi_app` and `wsgi_app`.

The streaming view yields from an async iterator under ASGI and a sync one under WSGI,
as Django wants for each.
"""

import hashlib

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="interop-tests-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    USE_TZ=True,
)
django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.handlers.asgi import ASGIRequest  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path as route, re_path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


def hello(request):
    return HttpResponse("Hello, world!", content_type="text/plain")


def as_json(request):
    return JsonResponse({"framework": "django", "query": request.GET.dict()})


@csrf_exempt
def echo(request):
    body = request.body
    return JsonResponse({"length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                         "content_type": request.headers.get("content-type")})


def headers(request):
    value = request.headers.get("x-test")
    return JsonResponse({"x-test": [value] if value is not None else []})


def cookies(request):
    response = HttpResponse("cookies set", content_type="text/plain")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True)
    return response


def go_home(request):
    return HttpResponseRedirect("/")


def stream(request):
    if isinstance(request, ASGIRequest):
        async def numbers():
            for i in range(5):
                yield f"{i}\n"
    else:
        def numbers():
            for i in range(5):
                yield f"{i}\n"
    return StreamingHttpResponse(numbers(), content_type="text/plain")


def error(request):
    raise RuntimeError("interop error route")


def rest_path(request, rest):
    return JsonResponse({"path": request.path, "param": rest})


def client(request):
    return JsonResponse({"client": request.META.get("REMOTE_ADDR"), "scheme": request.scheme,
                         "url": request.build_absolute_uri()})


urlpatterns = [
    route("", hello),
    route("json", as_json),
    route("echo", echo),
    route("headers", headers),
    route("cookies", cookies),
    route("redirect", go_home),
    route("stream", stream),
    route("error", error),
    re_path(r"^path/(?P<rest>.+)$", rest_path),
    route("client", client),
]

asgi_app = get_asgi_application()
wsgi_app = get_wsgi_application()
