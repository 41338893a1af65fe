"""A paginator for very large tables: it never counts more rows than it can show."""

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property

from d7sms import sql

#: Rows counted at most; beyond this the list says "more than" and offers filters.
COUNT_LIMIT = 10_000
#: ``ModelAdmin.show_facets`` value that never counts per filter choice (Django >= 5.0).
NO_FACETS = getattr(getattr(admin, "ShowFacets", None), "NEVER", None)


class CappedPaginator(Paginator):
    """Counts with ``COUNT(*)`` over a ``LIMIT`` subquery, so the cost is bounded.

    A full ``COUNT(*)`` on tens of millions of messages takes seconds; counting at most
    :data:`COUNT_LIMIT` + 1 rows takes milliseconds. On PostgreSQL an unfiltered list
    reports the planner's row estimate instead, so the page count stays meaningful.
    ``capped`` is True when the real number of rows may be larger than ``count``.
    """

    count_limit = COUNT_LIMIT

    @cached_property
    def count(self):
        qs = self.object_list
        n = qs.order_by()[: self.count_limit + 1].count()
        if n <= self.count_limit:
            self.capped = False
            return n
        self.capped = True
        estimate = None if qs.query.where else sql.estimated_rows(qs.model)
        return max(estimate or 0, self.count_limit)

    capped = False
