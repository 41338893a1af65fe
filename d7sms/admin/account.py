"""The account state entry of the admin index: it opens the "needs attention" page."""

from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse


class AccountStateAdmin(admin.ModelAdmin):
    """No list of its one row: the attention page shows the balance and the pause instead."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("d7sms.view_message") or super().has_view_permission(request, obj)

    def changelist_view(self, request, extra_context=None):
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:d7sms_message_attention"))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return self.changelist_view(request)
