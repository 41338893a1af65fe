"""Insert many rows that differ in a few columns, fast.

Storing a sendout writes tens of thousands of rows that differ only in the recipient. Measured
on 20,000 messages, ``bulk_create`` spent over 90 % of its time in Python (building model
instances, preparing every value of every row) and under 10 % in the database. :func:`insert`
prepares the shared values once, with Django's own ``get_db_prep_save``, and writes the rows in
slices with ``executemany`` (``COPY`` on PostgreSQL).
"""

from django.db import connections, router
from django.db.models import Model
from django.utils import timezone

_SLICE = 5000


def insert(model, varying, rows, **common):
    """INSERT one row of ``model`` per tuple in ``rows``; return how many were written.

    ``varying`` names the fields whose values each tuple holds, in order. Every other field
    takes its value from ``common`` (by name), else its default; ``auto_now``/``auto_now_add``
    fields get one timestamp. Callable defaults are called once per call, so a field whose
    default must differ per row (a unique UUID, say) has to be in ``varying``. Primary keys
    are not read back.
    """
    using = router.db_for_write(model)
    connection = connections[using]
    fields = [
        f for f in model._meta.concrete_fields if not (f.primary_key and f.get_internal_type().endswith("AutoField"))
    ]
    per_row = [_field(model, name) for name in varying]
    unknown = set(common) - {f.name for f in fields} - {f.attname for f in fields}
    if unknown:
        raise TypeError(f"{model.__name__} has no field(s) {sorted(unknown)}.")

    now = timezone.now()
    shared, shared_values = [], []
    for field in fields:
        if field in per_row:
            continue
        if field.name in common or field.attname in common:
            value = common.get(field.name, common.get(field.attname))
            if isinstance(value, Model):
                value = value.pk
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = now
        else:
            value = field.get_default()
        shared.append(field)
        shared_values.append(field.get_db_prep_save(value, connection))

    prepare = [lambda v, f=field: f.get_db_prep_save(v, connection) for field in per_row]
    head = tuple(shared_values)
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(f.column) for f in shared + per_row)
    marks = ", ".join(["%s"] * (len(shared) + len(per_row)))
    written = 0
    with connection.cursor() as cursor:
        # In slices, so that memory stays flat however many rows come.
        for part in _slices(rows, _SLICE):
            data = [head + tuple(p(v) for p, v in zip(prepare, row, strict=True)) for row in part]
            if connection.vendor == "postgresql":
                # COPY is several times faster than executemany on PostgreSQL.
                with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in data:
                        copy.write_row(row)
            else:
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", data)
            written += len(data)
    return written


def _slices(rows, size):
    part = []
    for row in rows:
        part.append(row)
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part


def _field(model, name):
    field = model._meta.get_field(name)
    if not field.concrete or field.primary_key:
        raise TypeError(f"{model.__name__}.{name} cannot vary per row here.")
    return field
