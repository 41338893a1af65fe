"""A project URLconf that forgot ``include("d7sms.urls")`` (tests/test_setup_mistakes.py)."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
