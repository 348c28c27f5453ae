"""The properties field: personal values never reach the database in clear."""

from __future__ import annotations

from django.db import models

from kequn.events.personal import merge_personal, split_personal


class PropertiesField(models.JSONField):
    """Event properties whose personal values move to an encrypted sibling field on save.

    The split happens in pre_save, which save(), bulk_create() and the importer's bulk insert
    all call, so no write path can store an email or phone in clear. The sibling (named by
    `personal`) must be declared after this field: fields are prepared in declaration order.
    """

    def __init__(self, *args, personal: str = "personal_properties", **kwargs):
        self.personal = personal
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.personal != "personal_properties":
            kwargs["personal"] = self.personal
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if not value or not isinstance(value, dict | list):
            return value
        cleaned, found = split_personal(value)
        if found:
            stored = getattr(model_instance, self.personal, None)
            setattr(model_instance, self.personal, merge_personal(stored, found))
        setattr(model_instance, self.attname, cleaned)
        return cleaned
