"""The HTTP routes (SPEC.md §2)."""

from django.urls import path

from chat import views

urlpatterns = [
    path("", views.index),
    path("client/<str:name>", views.client_file),
    path("healthz", views.healthz),
    path("api/token", views.token),
    path("metrics", views.metrics),
]
