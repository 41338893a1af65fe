"""A staff member's own SMS settings (StaffProfile): the number tests go to, and the time zone
schedules are typed in.

Every staff member may see and change their own settings, and no one else's (a superuser sees
all). The compose page types and shows schedules in :func:`zone_for`'s zone, and says which.
"""

import functools
import zoneinfo

from django import forms
from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from d7sms.models import StaffProfile

PROFILE, BROWSER, SITE = "profile", "browser", "site"


@functools.lru_cache(maxsize=1)
def zone_names():
    return sorted(zoneinfo.available_timezones())


def profile_of(user):
    """The user's StaffProfile, or None."""
    return StaffProfile.objects.filter(user=user).first() if user.is_authenticated else None


def zone_for(request):
    """``(zone name, source)``: the profile's zone, else the browser's (the compose form's hidden
    ``time_zone`` field, filled in by compose.js), else the site's."""
    profile = profile_of(request.user)
    if profile is not None and profile.time_zone in zone_names():
        return profile.time_zone, PROFILE
    posted = request.POST.get("time_zone", "") if request.method == "POST" else ""
    if posted in zone_names():
        return posted, BROWSER
    return timezone.get_current_timezone_name(), SITE


def zone_help(zone, source):
    """The help text of the schedule field: which zone the time is read in, and why that one."""
    why = {
        PROFILE: _("from your SMS settings"),
        BROWSER: _("your browser's"),
        SITE: _("this site's; set yours in your SMS settings"),
    }[source]
    return _("In your time zone, %(tz)s (%(why)s).") % {"tz": zone, "why": why}


def compose_context(request, site_name):
    """What the compose and preview pages show of the staff member: the zone schedules are read
    in (and where it came from) and the number tests go to."""
    zone, source = getattr(request, "d7sms_zone", (timezone.get_current_timezone_name(), SITE))
    profile = profile_of(request.user)
    return {
        "zone": zone,
        "zone_source": source,
        "browser_zone": zone if source == BROWSER else "",
        "browser_help": zone_help("{tz}", BROWSER),
        "test_to": request.POST.get("test_to") or (profile.phone if profile else ""),
        "profile_url": reverse(f"{site_name}:d7sms_staffprofile_mine"),
    }


class StaffProfileForm(forms.ModelForm):
    time_zone = forms.ChoiceField(
        label=gettext_lazy("My time zone"), required=False,
        help_text=gettext_lazy("Schedules are typed and shown in it. Empty: your browser's time zone."),
    )

    class Meta:
        model = StaffProfile
        fields = ("phone", "time_zone")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [("", _("My browser's time zone"))] + [(z, z) for z in zone_names()]


class StaffProfileAdmin(admin.ModelAdmin):
    """Each staff member edits their own settings; ``mine/`` opens them (made on first visit)."""

    form = StaffProfileForm
    list_display = ("user", "phone", "time_zone")

    def get_queryset(self, request):
        found = super().get_queryset(request)
        return found if request.user.is_superuser else found.filter(user=request.user)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and (obj is None or self._own(request, obj))

    def has_change_permission(self, request, obj=None):
        return self.has_view_permission(request, obj)

    def has_add_permission(self, request):
        return False  # opened through "mine/", one per user

    def has_delete_permission(self, request, obj=None):
        return obj is not None and self._own(request, obj)

    def _own(self, request, obj):
        return request.user.is_superuser or obj.user_id == request.user.pk

    def get_urls(self):
        mine = path("mine/", self.admin_site.admin_view(self.mine_view), name="d7sms_staffprofile_mine")
        return [mine, *super().get_urls()]

    def mine_view(self, request):
        """Open the user's own settings, made empty on the first visit."""
        profile, _created = StaffProfile.objects.get_or_create(user=request.user)
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:d7sms_staffprofile_change", args=[profile.pk]))

    def changelist_view(self, request, extra_context=None):
        if not request.user.is_superuser:
            return self.mine_view(request)
        return super().changelist_view(request, extra_context)
