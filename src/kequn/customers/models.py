"""The golden record: one Customer (person or company) with identities, addresses, consents, tags."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kequn.customers.places import get_province_of_city, normalize_city, normalize_province
from kequn.security.keyring.fields import (
    BlindIndexField,
    EncryptedCharField,
    EncryptedDateField,
    YearOfField,
)
from kequn.security.keyring.services import blind_index, blind_indexes
from kequn.security.masking import mask_address, mask_identity_value


class Customer(models.Model):
    class Kind(models.TextChoices):
        PERSON = "person", _("Person")
        COMPANY = "company", _("Company")

    class Gender(models.TextChoices):
        FEMALE = "f", _("Female")
        MALE = "m", _("Male")
        OTHER = "o", _("Other")
        UNKNOWN = "", _("Unknown")

    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.PERSON)
    name = models.CharField(_("name"), max_length=200, blank=True)
    gender = models.CharField(
        _("gender"), max_length=1, choices=Gender.choices, blank=True, default=""
    )
    birthday = EncryptedDateField(_("birthday"), null=True, blank=True)
    # In clear so that age rules can be range queries; the full date stays encrypted.
    birth_year = YearOfField(_("birth year"), source="birthday")
    age_band = models.CharField(_("age band"), max_length=16, blank=True)
    income_band = models.CharField(_("income band"), max_length=16, blank=True)
    occupation = models.CharField(_("occupation"), max_length=100, blank=True)
    industry = models.CharField(_("industry"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True, default="CN")
    province = models.CharField(_("province"), max_length=50, blank=True)
    city = models.CharField(_("city"), max_length=50, blank=True)
    preferred_language = models.CharField(
        _("preferred language"), max_length=10, blank=True, choices=settings.LANGUAGES
    )
    source_channel = models.CharField(_("source channel"), max_length=50, blank=True)
    external_ref = models.CharField(
        _("external reference"),
        max_length=100,
        blank=True,
        help_text=_("Key of the record in the system it came from (demo, import)."),
    )
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="merged_records",
        verbose_name=_("merged into"),
        help_text=_("Set when this record was merged into another one (kept for undo)."),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_customers",
        verbose_name=_("owner"),
        help_text=_("The sales rep in charge; sales reps see only the accounts they own."),
    )
    processing_restricted = models.BooleanField(
        _("processing restricted"),
        db_default=False,  # bulk loaders that list their columns need not know this one
        help_text=_(
            "Set on a data-subject request: the record is kept but not scored, "
            "segmented, exported or marketed to."
        ),
    )
    # Which source last set each profile field ({"name": "backoffice", "city": "shopify"}), so
    # an import keeps a value set by a source it trusts more; null: none recorded yet.
    field_sources = models.JSONField(
        _("field sources"), null=True, blank=True, editable=False, default=None
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["kind", "id"], name="customer_kind_idx"),
            models.Index(fields=["province", "city"], name="customer_geo_idx"),
            models.Index(fields=["city"], name="customer_city_idx"),
            # Segments by city count the live customers of a city from this index alone.
            models.Index(
                fields=["city", "id"],
                name="customer_live_city_idx",
                condition=Q(merged_into__isnull=True, processing_restricted=False),
            ),
            models.Index(fields=["source_channel"], name="customer_source_idx"),
            models.Index(fields=["created_at"], name="customer_created_idx"),
            models.Index(fields=["name"], name="customer_name_idx"),
            models.Index(
                fields=["external_ref"],
                name="customer_extref_idx",
                condition=~Q(external_ref=""),
            ),
        ]

    def __str__(self) -> str:
        return self.name or _("Customer #%(id)s") % {"id": self.pk}

    def clean(self) -> None:
        """Store places in their canonical short form (深圳市 / Shenzhen → 深圳)."""
        self.province = normalize_province(self.province)[:50]
        self.city = normalize_city(self.city, self.province)[:50]
        # A known city settles its province (深圳 is in 广东, whatever was there before).
        self.province = get_province_of_city(self.city) or self.province


class IdentityQuerySet(models.QuerySet):
    def with_value(self, value: str) -> IdentityQuerySet:
        """Return the identities whose (normalised) value is exactly `value`, by blind index."""
        return self.filter(value_index=blind_index(value))

    def with_values(self, values: list[str]) -> IdentityQuerySet:
        """Return the identities whose value is one of `values`, by blind index."""
        return self.filter(value_index__in=blind_indexes(values))


class Identity(models.Model):
    """A channel identifier of a customer, stored normalised (E.164 phone, lower-case email).

    The value is encrypted; exact lookups go through value_index (a keyed hash of the value).
    """

    class Kind(models.TextChoices):
        EMAIL = "email", _("Email")
        PHONE = "phone", _("Phone")
        WECHAT = "wechat", _("WeChat openid")
        EXTERNAL = "external", _("External id")

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        db_index=False,  # identity_customer_idx leads with the customer
        related_name="identities",
        verbose_name=_("customer"),
    )
    kind = models.CharField(_("type"), max_length=10, choices=Kind.choices)
    system = models.CharField(
        _("system"),
        max_length=50,
        blank=True,
        default="",
        help_text=_("Name of the system an external id belongs to, e.g. shopify."),
    )
    value = EncryptedCharField(_("value"), max_length=255, blind_index="value_index")
    value_index = BlindIndexField(_("value index"), source="value", default="")
    verified = models.BooleanField(_("verified"), default=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    objects = IdentityQuerySet.as_manager()

    class Meta:
        verbose_name = _("identity")
        verbose_name_plural = _("identities")
        constraints = [
            models.UniqueConstraint(
                # Leads with the blind index: lookups by value alone use it too.
                fields=["value_index", "kind", "system"],
                name="identity_unique_kind_system_value",
            ),
        ]
        indexes = [models.Index(fields=["customer", "kind"], name="identity_customer_idx")]

    def __str__(self) -> str:
        # Masked: str() ends up in places no role check guards (admin history, log lines).
        prefix = f"{self.system}:" if self.system else ""
        return f"{self.get_kind_display()} {prefix}{mask_identity_value(self.kind, self.value)}"


class Address(models.Model):
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="addresses", verbose_name=_("customer")
    )
    label = models.CharField(_("label"), max_length=30, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True, default="CN")
    province = models.CharField(_("province"), max_length=50, blank=True)
    city = models.CharField(_("city"), max_length=50, blank=True)
    district = models.CharField(_("district"), max_length=50, blank=True)
    line = EncryptedCharField(_("street address"), max_length=255, blank=True)
    postcode = EncryptedCharField(_("postcode"), max_length=20, blank=True)
    is_default = models.BooleanField(_("default"), default=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("address")
        verbose_name_plural = _("addresses")

    def __str__(self) -> str:
        # Masked like Identity.__str__: the street line is personal data.
        return mask_address(self.province, self.city, self.district, self.line)

    def get_full_text(self) -> str:
        """Return the whole address as one line (callers check the viewer may see it)."""
        return " ".join(p for p in [self.province, self.city, self.district, self.line] if p)


class Consent(models.Model):
    """One consent decision; rows are never updated, so the history is kept and the latest wins."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")
        PHONE = "phone", _("Phone")
        WECHAT = "wechat", _("WeChat")

    class Purpose(models.TextChoices):
        MARKETING = "marketing", _("Marketing")
        SERVICE = "service", _("Service")
        TRACKING = "tracking", _("Open and click tracking")

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        db_index=False,  # consent_latest_idx leads with the customer
        related_name="consents",
        verbose_name=_("customer"),
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    purpose = models.CharField(_("purpose"), max_length=10, choices=Purpose.choices)
    granted = models.BooleanField(_("granted"))
    source = models.CharField(_("source"), max_length=100, blank=True)
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["-recorded_at", "-id"]
        indexes = [
            models.Index(
                fields=["customer", "channel", "purpose", "-recorded_at"],
                name="consent_latest_idx",
            )
        ]

    def __str__(self) -> str:
        state = _("granted") if self.granted else _("withdrawn")
        return f"{self.get_channel_display()} / {self.get_purpose_display()}: {state}"


class TagGroup(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)

    class Meta:
        verbose_name = _("tag group")
        verbose_name_plural = _("tag groups")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    class Kind(models.TextChoices):
        MANUAL = "manual", _("Manual")
        RULE = "rule", _("Rule-made")

    group = models.ForeignKey(
        TagGroup,
        on_delete=models.PROTECT,
        related_name="tags",
        null=True,
        blank=True,
        verbose_name=_("group"),
    )
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.MANUAL)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    customers = models.ManyToManyField(
        Customer, through="CustomerTag", related_name="tags", verbose_name=_("customers")
    )

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["group__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["group", "name"], name="tag_unique_group_name")
        ]

    def __str__(self) -> str:
        return f"{self.group.name}: {self.name}" if self.group_id else self.name


class CustomerTag(models.Model):
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        db_index=False,  # the (customer, tag) unique index leads with the customer
        related_name="tag_links",
        verbose_name=_("customer"),
    )
    tag = models.ForeignKey(
        Tag,
        on_delete=models.CASCADE,
        db_index=False,  # customertag_tag_idx leads with the tag
        related_name="customer_links",
        verbose_name=_("tag"),
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        verbose_name=_("added by"),
    )
    added_at = models.DateTimeField(_("added at"), default=timezone.now)

    class Meta:
        verbose_name = _("customer tag")
        verbose_name_plural = _("customer tags")
        constraints = [
            models.UniqueConstraint(fields=["customer", "tag"], name="customertag_unique")
        ]
        indexes = [models.Index(fields=["tag", "customer"], name="customertag_tag_idx")]

    def __str__(self) -> str:
        return f"{self.customer} — {self.tag}"


class CompanyContact(models.Model):
    """A person who works for a company customer (B2B)."""

    company = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="contact_links",
        limit_choices_to={"kind": Customer.Kind.COMPANY},
        verbose_name=_("company"),
    )
    contact = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="company_links",
        limit_choices_to={"kind": Customer.Kind.PERSON},
        verbose_name=_("contact"),
    )
    title = models.CharField(_("job title"), max_length=100, blank=True)
    is_primary = models.BooleanField(_("primary contact"), default=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("company contact")
        verbose_name_plural = _("company contacts")
        constraints = [
            models.UniqueConstraint(fields=["company", "contact"], name="companycontact_unique")
        ]
        indexes = [models.Index(fields=["contact"], name="companycontact_contact_idx")]

    def __str__(self) -> str:
        return f"{self.contact} @ {self.company}"
