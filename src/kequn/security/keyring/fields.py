"""Model fields whose Python value is plaintext and whose stored value is AES-GCM ciphertext."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.core import validators
from django.core.exceptions import FieldError
from django.db import models
from django.db.models.lookups import Exact, In

from kequn.security.keyring import services


class EncryptedMixin:
    """Encrypt on the way to the database, decrypt on the way back; only exact lookups."""

    is_json = False
    # Found by keyring.services.get_encrypted_fields (which cannot import this module).
    is_encrypted = True

    def contribute_to_class(self, cls, name, *args, **kwargs):
        super().contribute_to_class(cls, name, *args, **kwargs)
        # The associated data binds each ciphertext to this column (app.model.field).
        self.purpose = f"{cls._meta.label_lower}.{name}"

    def get_lookup(self, lookup_name):
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        if lookup_name in ("exact", "in") and not self.is_json:
            return BlindExact if lookup_name == "exact" else BlindIn
        raise FieldError(
            f"{getattr(self, 'purpose', self.name)} is encrypted: it cannot be filtered with "
            f"'{lookup_name}' (only exact values, through a blind index)"
        )

    def get_transform(self, lookup_name):
        raise FieldError(
            f"{getattr(self, 'purpose', self.name)} is encrypted: it has no parts to query"
        )


def _blind_column(lhs, what: str):
    field = lhs.target
    if not getattr(field, "blind_index", None):
        raise FieldError(
            f"{field.purpose} is encrypted and has no blind index: it can only be compared "
            f"with '' (got {what})"
        )
    return field.model._meta.get_field(field.blind_index).get_col(lhs.alias)


class BlindExact(Exact):
    """`value="x"` compares the keyed hash of x with the blind index column; `""` stays as is."""

    def __init__(self, lhs, rhs):
        if isinstance(rhs, str) and rhs != "":
            lhs, rhs = _blind_column(lhs, "a value"), services.blind_index(rhs)
        elif rhs != "":
            raise FieldError(f"{lhs.target.purpose} is encrypted: compare it with plain strings")
        super().__init__(lhs, rhs)


class BlindIn(In):
    """`value__in=[…]` compares keyed hashes with the blind index column."""

    def __init__(self, lhs, rhs):
        if not isinstance(rhs, (list, tuple, set, frozenset)):
            raise FieldError(f"{lhs.target.purpose} is encrypted: give __in a list of strings")
        lhs = _blind_column(lhs, "a list")
        super().__init__(lhs, services.blind_indexes([str(v) for v in rhs]))


class EncryptedCharField(EncryptedMixin, models.TextField):
    """A short text stored encrypted (the column is text: ciphertext is longer than the value)."""

    def __init__(
        self, *args, max_length: int | None = None, blind_index: str | None = None, **kwargs
    ):
        # blind_index names the field holding the keyed hash; exact lookups then go through it.
        self.blind_index = blind_index
        super().__init__(*args, max_length=max_length, **kwargs)
        if max_length:
            self.validators.append(validators.MaxLengthValidator(max_length))

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.blind_index:
            kwargs["blind_index"] = self.blind_index
        return name, path, args, kwargs

    def get_db_prep_value(self, value, connection, prepared=False):
        if hasattr(value, "resolve_expression"):
            return super().get_db_prep_value(value, connection, prepared)
        value = super().get_db_prep_value(value, connection, prepared)
        if value is None or value == "":
            return value
        return services.encrypt(self.purpose, str(value), connection.alias)

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return services.decrypt(self.purpose, value, connection.alias)

    def formfield(self, **kwargs):
        # A one-line input with a length limit, as a CharField would get, not a textarea.
        defaults = {"form_class": forms.CharField, "max_length": self.max_length}
        return models.Field.formfield(self, **{**defaults, **kwargs})


class EncryptedDateField(EncryptedMixin, models.DateField):
    """A date stored as encrypted ISO text; forms and the admin treat it as a date."""

    def db_type(self, connection):
        return models.TextField().db_type(connection)

    def get_internal_type(self) -> str:
        return "TextField"

    def get_db_prep_value(self, value, connection, prepared=False):
        if hasattr(value, "resolve_expression"):
            return value
        value = self.get_prep_value(value) if not prepared else value
        if value is None:
            return None
        return services.encrypt(self.purpose, value.isoformat(), connection.alias)

    def from_db_value(self, value, expression, connection):
        if not value:
            return None
        return dt.date.fromisoformat(services.decrypt(self.purpose, value, connection.alias))


class DerivedMixin:
    """A column computed from another field's plaintext on every save and insert.

    bulk_update() and QuerySet.update() do not call pre_save: update the column with them.
    """

    def __init__(self, *args, source: str, **kwargs):
        self.source = source
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        return name, path, args, kwargs

    def derive(self, value):
        raise NotImplementedError

    def pre_save(self, model_instance, add):
        source = model_instance._meta.get_field(self.source)
        derived = self.derive(source.to_python(getattr(model_instance, self.source)))
        setattr(model_instance, self.attname, derived)
        return derived


class YearOfField(DerivedMixin, models.PositiveSmallIntegerField):
    """The year of another (encrypted) date field, in clear for range queries such as age."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("null", True)
        super().__init__(*args, **kwargs)

    def derive(self, value):
        return value.year if value else None


class EncryptedJSONField(EncryptedMixin, models.JSONField):
    """A JSON document stored as one encrypted JSON string (the column keeps its JSON type)."""

    is_json = True

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None or hasattr(value, "resolve_expression"):
            return super().get_db_prep_value(value, connection, prepared)
        text = services.dumps_json(value, self.encoder)
        token = services.encrypt(self.purpose, text, connection.alias)
        return super().get_db_prep_value(token, connection, prepared)

    def from_db_value(self, value, expression, connection):
        value = super().from_db_value(value, expression, connection)
        if isinstance(value, str) and value.startswith(services.PREFIX):
            text = services.decrypt(self.purpose, value, connection.alias)
            return services.json.loads(text, cls=self.decoder)
        return value


class BlindIndexField(DerivedMixin, models.CharField):
    """The keyed hash of another field's plaintext, for exact look-ups without decrypting."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 40)
        super().__init__(*args, **kwargs)

    def derive(self, value):
        return services.blind_index(value) if value else ""
